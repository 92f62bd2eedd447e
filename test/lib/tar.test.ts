import { describe, expect, it } from "vitest";
import { BLOCK, ByteReader, END_OF_ARCHIVE, entryHeader, padding, readEntryHeader } from "../../worker/lib/tar";

/** A stream handing out `bytes` in pieces of `size`, to cross every block boundary. */
function streamOf(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.byteLength) return controller.close();
      controller.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

function archiveOf(entries: { name: string; body: Uint8Array; records?: Record<string, string> }[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const e of entries) {
    parts.push(entryHeader({ name: e.name, size: e.body.byteLength, mtime: 1_700_000_000, records: e.records ?? {} }));
    parts.push(e.body, new Uint8Array(padding(e.body.byteLength)));
  }
  parts.push(END_OF_ARCHIVE);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

async function readAll(bytes: Uint8Array, chunk: number) {
  const reader = new ByteReader(streamOf(bytes, chunk));
  const out: { name: string; records: Record<string, string>; body: string }[] = [];
  for (;;) {
    const header = await readEntryHeader(reader);
    if (header === null) break;
    let body = "";
    for await (const piece of reader.chunks(header.size)) body += new TextDecoder().decode(piece, { stream: true });
    await reader.skip(padding(header.size));
    out.push({ name: header.name, records: header.records, body });
  }
  return out;
}

describe("tar codec (ustar + pax)", () => {
  it("round-trips long UTF-8 names, pax records and bodies across any chunking", async () => {
    const longName = `objects/${"ä".repeat(200)}/${"x".repeat(300)}.json`;
    const entries = [
      { name: longName, body: new TextEncoder().encode("hello"), records: { "meshbox.class": "other", "meshbox.modified": "123" } },
      { name: "empty", body: new Uint8Array(0) },
      { name: "blocky", body: new Uint8Array(BLOCK * 3 + 7).fill(65) },
    ];
    const bytes = archiveOf(entries);
    expect(bytes.byteLength % BLOCK).toBe(0);
    for (const chunk of [1, 100, 511, 512, 4096, bytes.byteLength]) {
      expect(await readAll(bytes, chunk)).toEqual([
        { name: longName, records: { "meshbox.class": "other", "meshbox.modified": "123" }, body: "hello" },
        { name: "empty", records: {}, body: "" },
        { name: "blocky", records: {}, body: "A".repeat(BLOCK * 3 + 7) },
      ]);
    }
  });

  it("writes headers a standard tar reads: ustar magic and a valid checksum", () => {
    const header = entryHeader({ name: "a.txt", size: 3, mtime: 0, records: {} });
    const file = header.subarray(header.byteLength - BLOCK);
    expect(new TextDecoder().decode(file.subarray(257, 263))).toBe("ustar\0");
    expect(new TextDecoder().decode(file.subarray(0, 5))).toBe("a.txt");
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : file[i]!;
    expect(parseInt(new TextDecoder().decode(file.subarray(148, 154)), 8)).toBe(sum);
  });

  it("refuses a flipped header byte, a truncated body and a missing end marker", async () => {
    const bytes = archiveOf([{ name: "one", body: new Uint8Array(1000).fill(1) }]);
    const flipped = bytes.slice();
    flipped[BLOCK * 2 + 3] = flipped[BLOCK * 2 + 3]! ^ 0x10;
    await expect(readAll(flipped, 512)).rejects.toThrow("The archive is corrupt: a header checksum does not match.");
    await expect(readAll(bytes.slice(0, BLOCK * 3 + 100), 512)).rejects.toThrow(
      "The archive is corrupt: it ends in the middle of an entry (truncated).",
    );
    await expect(readAll(bytes.slice(0, bytes.byteLength - 2 * BLOCK), 512)).rejects.toThrow(
      "The archive is corrupt: it ends without the end-of-archive blocks (truncated).",
    );
  });
});
