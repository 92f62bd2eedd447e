import { describe, expect, it } from "vitest";
import { signSessionToken, signingKeysFrom, verifySessionToken, type SessionClaims } from "../../worker/lib/session-token";

const SECRET_A = "a".repeat(40);
const SECRET_B = "b".repeat(40);
const ISSUER = "tenant-cache-test";

function claims(nowSec: number, ttl: number): SessionClaims {
  return { sub: "user-1", mesh: "mesh-cache", scope: "full", jti: crypto.randomUUID(), iat: nowSec, exp: nowSec + ttl };
}

describe("verifySessionToken with the per-isolate cache of verified tokens", () => {
  it("answers the same claims for a token verified before, and null once it has expired", async () => {
    const keys = (await signingKeysFrom(SECRET_A, undefined))!;
    const nowMs = Date.now();
    const c = claims(Math.floor(nowMs / 1000), 60);
    const token = await signSessionToken(keys, ISSUER, c);
    const options = { issuer: ISSUER, clockToleranceSeconds: 5 };
    expect(await verifySessionToken(token, keys, { ...options, now: nowMs })).toEqual(c);
    expect(await verifySessionToken(token, keys, { ...options, now: nowMs + 1_000 })).toEqual(c);
    expect(await verifySessionToken(token, keys, { ...options, now: (c.exp + 5) * 1000 })).toBeNull();
  });

  it("refuses a cached token once its signing key is rotated out, and under another issuer", async () => {
    const oldKeys = (await signingKeysFrom(SECRET_A, undefined))!;
    const c = claims(Math.floor(Date.now() / 1000), 600);
    const token = await signSessionToken(oldKeys, ISSUER, c);
    const options = { issuer: ISSUER, clockToleranceSeconds: 5 };
    expect(await verifySessionToken(token, oldKeys, options)).toEqual(c);
    expect(await verifySessionToken(token, (await signingKeysFrom(SECRET_B, SECRET_A))!, options)).toEqual(c);
    expect(await verifySessionToken(token, (await signingKeysFrom(SECRET_B, undefined))!, options)).toBeNull();
    expect(await verifySessionToken(token, oldKeys, { ...options, issuer: "another-tenant" })).toBeNull();
  });

  it("never caches a token whose signature does not verify", async () => {
    const keys = (await signingKeysFrom(SECRET_A, undefined))!;
    const token = await signSessionToken(keys, ISSUER, claims(Math.floor(Date.now() / 1000), 600));
    const [h, p, sig] = token.split(".");
    const forged = `${h}.${p}.${sig!.slice(0, -2)}${sig!.endsWith("AA") ? "BB" : "AA"}`;
    const options = { issuer: ISSUER, clockToleranceSeconds: 5 };
    expect(await verifySessionToken(forged, keys, options)).toBeNull();
    expect(await verifySessionToken(forged, keys, options)).toBeNull();
  });
});
