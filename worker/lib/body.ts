// Request bodies: size limits enforced from Content-Length before reading, and by counting
// bytes as they stream (a client may lie about, or omit, Content-Length).
import { HttpError, badRequest, payloadTooLarge } from "./errors";

/** Declared body length, or null when absent. A malformed header is the client's mistake. */
export function declaredLength(request: Request): number | null {
  const raw = request.headers.get("Content-Length");
  if (raw === null) return null;
  if (!/^\d{1,16}$/.test(raw.trim())) throw badRequest("Content-Length is not a byte count.");
  return Number(raw.trim());
}

/** 413 before reading anything when the declared length is over the limit. */
export function assertDeclaredWithin(request: Request, limit: number, what: string): number | null {
  const length = declaredLength(request);
  if (length !== null && length > limit) throw payloadTooLarge(limit, what);
  return length;
}

/** A body stream counted as it flows, with what the count has seen so far. */
interface CountedStream {
  stream: ReadableStream<Uint8Array>;
  /** Bytes that have passed so far. */
  seen(): number;
  /** True once the source ended normally. */
  ended(): boolean;
}

/**
 * Passes a body through while counting it; errors the stream with a 413 HttpError as soon as it
 * exceeds the limit, so a consumer (an R2 put) fails before storing anything over the limit.
 */
function countStream(body: ReadableStream<Uint8Array>, limit: number, what: string): CountedStream {
  let seen = 0;
  let ended = false;
  const stream = body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.byteLength;
        if (seen > limit) {
          controller.error(payloadTooLarge(limit, what));
          return;
        }
        controller.enqueue(chunk);
      },
      flush() {
        ended = true;
      },
    }),
  );
  return { stream, seen: () => seen, ended: () => ended };
}

/** The body, refused with a 413 the moment it passes the limit. */
export function limitStream(
  body: ReadableStream<Uint8Array>,
  limit: number,
  what: string,
): ReadableStream<Uint8Array> {
  return countStream(body, limit, what).stream;
}

/** Reads a small body whole (control objects, JSON), refusing it past the limit. */
export async function readBodyWithin(request: Request, limit: number, what: string): Promise<Uint8Array> {
  const declared = assertDeclaredWithin(request, limit, what);
  if (request.body === null) return new Uint8Array(0);
  // A declared length within the limit bounds the read: read it at once, no stream stage.
  if (declared !== null) return readDeclared(request, declared);
  const reader = limitStream(request.body, limit, what).getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      total += value.byteLength;
    }
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw badRequest("The request body could not be read.");
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/**
 * Parses the `{ path }` (or other small) JSON body of the POST routes: 400 on anything malformed.
 * With `allowEmpty`, an absent or empty body reads as `{}` (for optional bodies).
 */
export async function readJsonObject(
  request: Request,
  limit: number,
  options: { allowEmpty?: boolean } = {},
): Promise<Record<string, unknown>> {
  const bytes = await readBodyWithin(request, limit, "JSON body");
  if (options.allowEmpty === true && bytes.byteLength === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    throw badRequest("The request body is not valid JSON.");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw badRequest("The request body must be a JSON object.");
  }
  return value as Record<string, unknown>;
}

/** A request body R2 can store: its length is known up front (R2 refuses unknown-length streams). */
export interface SizedBody {
  body: ReadableStream<Uint8Array> | Uint8Array;
  length: number;
  /**
   * After a consumer of `body` failed: the client-side reason (413 over the limit, 400 shorter or
   * longer than declared), or null when the stream itself was fine and the consumer is to blame.
   */
  failure(): HttpError | null;
}

/** Reads a body whose Content-Length was checked against the limit; 400 when it differs. */
async function readDeclared(request: Request, length: number): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await request.arrayBuffer());
  } catch {
    throw badRequest("The request body could not be read.");
  }
  if (bytes.byteLength !== length) throw badRequest(`The body did not match its Content-Length of ${length} bytes.`);
  return bytes;
}

/** Declared lengths up to this are read into memory at once (sizedBody). */
const BUFFER_AT_MOST = 256 * 1024;

/**
 * Prepares a body for R2 without buffering a large declared-length body: the stream is counted against
 * the limit and wrapped in a FixedLengthStream. Without Content-Length the body is read into
 * memory, bounded by the limit (the class limits a chunked upload can hit are a few MiB).
 */
export async function sizedBody(request: Request, limit: number, what: string): Promise<SizedBody> {
  const length = assertDeclaredWithin(request, limit, what);
  if (length !== null && length <= BUFFER_AT_MOST && request.body !== null) {
    // A small body (every change file a client writes) is read at once: two stream stages per
    // chunk cost more than the copy.
    return { body: await readDeclared(request, length), length, failure: () => null };
  }
  if (length === null || request.body === null) {
    const bytes = await readBodyWithin(request, limit, what);
    return { body: bytes, length: bytes.byteLength, failure: () => null };
  }
  const counted = countStream(request.body, limit, what);
  const body = counted.stream.pipeThrough(new FixedLengthStream(length));
  return {
    body,
    length,
    failure: () => {
      const seen = counted.seen();
      if (seen > limit) return payloadTooLarge(limit, what);
      if (seen > length || (counted.ended() && seen !== length)) return badRequest(`The body did not match its Content-Length of ${length} bytes.`);
      return null;
    },
  };
}
