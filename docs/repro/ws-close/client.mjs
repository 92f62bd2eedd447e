// node client.mjs <origin> [reply=1|0]: opens a socket with Node's global WebSocket (undici), asks
// the worker to close it, and prints when the close frame's code arrived vs the `close` event.
const origin = process.argv[2];
const reply = process.argv[3] ?? "1";
const ws = new WebSocket(`${origin.replace("http", "ws")}/ws?reply=${reply}`);
await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
const t0 = Date.now();
const answer = await (await fetch(`${origin}/close`, { method: "POST" })).json();
const answeredMs = Date.now() - t0;
const ev = await new Promise((resolve) => {
  ws.onclose = (e) => resolve({ code: e.code, reason: e.reason, closeEventMs: Date.now() - t0 });
  setTimeout(() => resolve({ timeout: true }), 20_000);
});
console.log(JSON.stringify({ reply, answer, answeredMs, ...ev }));
