// Recovery wrappers (PROTOCOL.md section 5): opaque bodies under r/<locator>, outside every
// mesh. Write-once, made atomic by R2's conditional put (two racing first writes: one 201, one 409).
import type { Env } from "../env";
import { HttpError, conflict, unavailable } from "../lib/errors";
import { recoveryKey } from "../lib/paths";
import { r2Call } from "./r2-objects";

export async function putRecoveryWrapper(env: Env, locator: string, body: Uint8Array): Promise<R2Object> {
  let stored: R2Object | null;
  const key = recoveryKey(locator);
  // Tells, when R2's answer is lost, whether this very write landed (then it is this PUT's 201).
  const writeId = crypto.randomUUID();
  try {
    stored = await env.BUCKET.put(key, body, {
      onlyIf: { etagDoesNotMatch: "*" },
      httpMetadata: { contentType: "application/octet-stream" },
      customMetadata: { write: writeId },
    });
  } catch (err) {
    if (err instanceof HttpError) throw err;
    console.error(JSON.stringify({ level: "error", msg: "R2 put failed (recovery)", error: String(err) }));
    const landed = await Promise.resolve()
      .then(() => env.BUCKET.head(key))
      .catch(() => null);
    if (landed !== null && landed.customMetadata?.write === writeId) return landed;
    throw unavailable("Storage did not accept the wrapper; retry.");
  }
  if (stored === null) throw conflict("A recovery wrapper already exists at this locator; wrappers are write-once.");
  return stored;
}

/** The wrapper with its body, or (HEAD) its metadata alone from R2 head(). */
export async function readRecoveryWrapper(
  env: Env,
  locator: string,
  options: { body: boolean } = { body: true },
): Promise<R2ObjectBody | R2Object | null> {
  const key = recoveryKey(locator);
  return options.body ? r2Call("get", () => env.BUCKET.get(key)) : r2Call("head", () => env.BUCKET.head(key));
}
