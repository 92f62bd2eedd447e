import { describe, expect, it } from "vitest";
import { HttpError } from "../../worker/lib/errors";
import { assertDeclaredWithin, declaredLength, limitStream, readBodyWithin, readJsonObject, sizedBody } from "../../worker/lib/body";

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(chunks[i++]!);
      else controller.close();
    },
  });
}

/** Like an incoming request: a known-size body carries its Content-Length (constructed ones do not by themselves). */
function putRequest(body: BodyInit | null, headers: Record<string, string> = {}): Request {
  const declared: Record<string, string> = {};
  if (typeof body === "string") declared["Content-Length"] = String(new TextEncoder().encode(body).byteLength);
  if (body instanceof Uint8Array) declared["Content-Length"] = String(body.byteLength);
  return new Request("http://x/", { method: "PUT", body, headers: { ...declared, ...headers } });
}

async function rejection(promise: Promise<unknown>): Promise<HttpError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof HttpError) return err;
    throw err;
  }
  throw new Error("expected a rejection");
}

describe("declaredLength", () => {
  it("reads Content-Length, and refuses a malformed one with 400", () => {
    expect(declaredLength(putRequest("abc"))).toBe(3);
    const bad = new Request("http://x/", { method: "POST", headers: { "Content-Length": "-1" } });
    expect(() => declaredLength(bad)).toThrow(HttpError);
  });
});

describe("assertDeclaredWithin", () => {
  it("refuses a declared length over the limit with 413 and the limit", () => {
    try {
      assertDeclaredWithin(putRequest("12345"), 4, "thing");
      throw new Error("expected 413");
    } catch (err) {
      expect(err).toBeInstanceOf(HttpError);
      expect((err as HttpError).status).toBe(413);
      expect((err as HttpError).extra).toEqual({ limit: 4 });
    }
  });
});

describe("limitStream", () => {
  it("passes bodies within the limit and errors past it", async () => {
    const ok = await new Response(limitStream(streamOf([new Uint8Array(3), new Uint8Array(2)]), 5, "x")).arrayBuffer();
    expect(ok.byteLength).toBe(5);
    const err = await rejection(new Response(limitStream(streamOf([new Uint8Array(3), new Uint8Array(3)]), 5, "x")).arrayBuffer());
    expect(err.status).toBe(413);
  });
});

describe("readBodyWithin", () => {
  it("reads a chunked body whole and refuses one past the limit", async () => {
    expect(await readBodyWithin(putRequest(streamOf([new Uint8Array([1, 2]), new Uint8Array([3])])), 3, "x")).toEqual(new Uint8Array([1, 2, 3]));
    expect((await rejection(readBodyWithin(putRequest(streamOf([new Uint8Array(4)])), 3, "x"))).status).toBe(413);
  });
});

describe("sizedBody", () => {
  it("buffers a body without Content-Length, bounded by the limit", async () => {
    const sized = await sizedBody(putRequest(streamOf([new Uint8Array([9, 9])])), 10, "x");
    expect(sized.length).toBe(2);
    expect(sized.body).toEqual(new Uint8Array([9, 9]));
    expect((await rejection(sizedBody(putRequest(streamOf([new Uint8Array(11)])), 10, "x"))).status).toBe(413);
  });

  it("reads a small declared-length body at once, with its length known", async () => {
    const sized = await sizedBody(putRequest(new Uint8Array(6)), 10, "x");
    expect(sized.length).toBe(6);
    expect(sized.body).toBeInstanceOf(Uint8Array);
    expect((sized.body as Uint8Array).byteLength).toBe(6);
    expect(sized.failure()).toBeNull();
  });

  it("streams a large declared-length body with its length known", async () => {
    const size = 256 * 1024 + 1;
    const sized = await sizedBody(putRequest(new Uint8Array(size)), 1024 * 1024, "x");
    expect(sized.length).toBe(size);
    expect(sized.body).toBeInstanceOf(ReadableStream);
    expect((await new Response(sized.body).arrayBuffer()).byteLength).toBe(size);
    expect(sized.failure()).toBeNull();
  });

  it("refuses a declared length over the limit before reading", async () => {
    expect((await rejection(sizedBody(putRequest(new Uint8Array(11)), 10, "x"))).status).toBe(413);
  });
});

describe("readJsonObject", () => {
  it("parses an object and refuses anything else with 400", async () => {
    expect(await readJsonObject(putRequest('{"path":"/a"}'), 100)).toEqual({ path: "/a" });
    for (const bad of ["[]", "null", "1", "{", "\u00ff\u00fe"]) {
      expect((await rejection(readJsonObject(putRequest(bad), 100))).status).toBe(400);
    }
  });
});
