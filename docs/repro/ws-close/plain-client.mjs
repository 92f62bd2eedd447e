// node plain-client.mjs <origin>: the control, a plain socket the Worker closes 200 ms after accept.
const ws = new WebSocket(`${process.argv[2].replace("http", "ws")}/ws?mode=plain`);
await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
const t0 = Date.now();
const ev = await new Promise((resolve) => {
  ws.onclose = (e) => resolve({ code: e.code, reason: e.reason, closeEventMs: Date.now() - t0 });
  setTimeout(() => resolve({ timeout: true }), 20_000);
});
console.log(JSON.stringify({ mode: "plain", ...ev }));
