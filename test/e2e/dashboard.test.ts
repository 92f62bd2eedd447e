// The admin dashboard in a real headless Chromium (Debian's package, driven by playwright-core)
// against `wrangler dev`: a wrong token shows an error, signing in lists a mesh a device wrote,
// its chart has a bar, and a key is revoked through the typed confirmation. The token never
// appears in a URL the page requests. A screenshot is written to test-results/dashboard.png.
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Device } from "./support/device";
import { startWorker, type RunningWorker } from "./support/worker-process";

const CHROMIUM = "/usr/bin/chromium";
const ADMIN_TOKEN = "e2e-dashboard-admin-token-0123456789";
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const artifacts = path.join(root, "test-results");

let worker: RunningWorker;
let browser: Browser;
let page: Page;
const requested: string[] = [];
const failedResponses: string[] = [];
const mesh = `dash-${crypto.randomUUID().slice(0, 8)}`;

function admin(method: string, route: string, body?: unknown): Promise<Response> {
  return fetch(`${worker.base}/admin/${route}`, {
    method,
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`The dashboard test needs Debian's chromium at ${CHROMIUM}: apt-get install -y chromium (.ci/run does this).`);
  }
  worker = await startWorker({ frozenSources: true, vars: { ADMIN_TOKEN } });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
  page.on("request", (r) => requested.push(r.url()));
  page.on("response", (r) => {
    // The browser's own favicon probe at the origin's root is not the page's doing.
    if (r.status() >= 400 && new URL(r.url()).pathname !== "/favicon.ico") failedResponses.push(`${r.status()} ${new URL(r.url()).pathname}`);
  });
});
afterAll(async () => {
  await browser?.close();
  await worker?.stop();
});

describe("the admin dashboard in Chromium", () => {
  it("shows an error for a wrong token, then signs in, lists, charts and revokes", async () => {
    // A device writes, so the mesh is listed and its chart has writes in the current hour.
    const device = new Device({ base: worker.base, mesh, deviceId: "dash_dev1" });
    await device.connect({ pull: false, flush: false });
    device.write({ a: "1", b: "2" });
    await device.flush();
    await device.close();

    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => { if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(m.text()); });

    await page.goto(`${worker.base}/admin/ui`);
    await page.fill("#token", "not-the-admin-token");
    await page.click("#sign-in-form button[type=submit]");
    await page.waitForSelector("#sign-in-error:not([hidden])");
    expect(await page.textContent("#sign-in-error")).toContain("The admin token was refused.");
    expect(await page.isHidden("#app")).toBe(true);

    await page.fill("#token", ADMIN_TOKEN);
    await page.click("#sign-in-form button[type=submit]");
    const meshButton = page.locator(`#mesh-rows button[data-mesh="${mesh}"]`);
    await meshButton.waitFor();
    expect(await page.isHidden("#sign-in-error")).toBe(true);

    await meshButton.click();
    await page.waitForSelector("#mesh-detail:not([hidden]) #chart svg");
    expect(await page.textContent("#detail-mesh")).toBe(mesh);
    const bars = await page.$$eval("#chart rect.bar", (rects) => rects.map((r) => ({ writes: Number(r.getAttribute("data-writes")), height: Number(r.getAttribute("height")) })));
    expect(bars).toHaveLength(24);
    expect(bars.some((b) => b.writes > 0 && b.height > 0)).toBe(true);

    // A key created through the API, revoked in the page through the typed confirmation.
    const created = await admin("POST", "keys", { name: "dashboard-e2e", meshPattern: mesh, access: "full" });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    await page.reload(); // the token is in sessionStorage: still signed in
    const revoke = page.locator(`#key-rows tr[data-id="${id}"] button`);
    await revoke.click();
    await page.waitForSelector("#confirm[open]");
    expect(await page.isDisabled("#confirm-ok")).toBe(true);
    await page.fill("#confirm-input", id.slice(0, -1));
    expect(await page.isDisabled("#confirm-ok")).toBe(true);
    await page.fill("#confirm-input", id);
    await page.click("#confirm-ok");
    await page.locator(`#key-rows tr[data-id="${id}"] button`).waitFor({ state: "detached" });
    const keys = (await (await admin("GET", "keys")).json()) as { keys: { id: string; revokedAt: string | null }[] };
    expect(keys.keys.find((k) => k.id === id)?.revokedAt).toEqual(expect.any(String));

    await meshButton.click();
    await page.waitForSelector("#mesh-detail:not([hidden]) #chart svg");
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: path.join(artifacts, "dashboard.png"), fullPage: true });

    expect(errors).toEqual([]);
    // The one refused request is the wrong token's check; no CSP violation, no missing asset.
    expect(failedResponses).toEqual(["401 /sync/admin/usage"]);
    expect(requested.length).toBeGreaterThan(5);
    expect(requested.filter((u) => u.includes(ADMIN_TOKEN) || u.includes("not-the-admin-token"))).toEqual([]);
  });
});
