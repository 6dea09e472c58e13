// The upload's buffering (static/js/source/upload.js): only unacknowledged bytes are held, a
// resume from any acknowledged offset finds its bytes, acknowledged pieces are recycled. The
// network side runs against the real server in Chromium (tests/browser/).
import assert from "node:assert/strict";
import { test } from "node:test";

import { Upload, blobSource } from "../../static/js/source/upload.js";

const HEADER = 100;
const SIZE = HEADER + 10_000;
const byteAt = (i) => (i * 7 + 3) & 0xff;

function source() {
  let pos = HEADER;
  const asked = [];
  return {
    asked,
    pull: async (max) => {
      asked.push(max);
      const n = Math.min(max, SIZE - pos);
      const piece = Uint8Array.from({ length: n }, (_, k) => byteAt(pos + k));
      pos += n;
      return piece;
    },
  };
}

const expected = (from, to) => Uint8Array.from({ length: to - from }, (_, k) => byteAt(from + k));

test("chunks come out in order and only unacknowledged bytes are held", async () => {
  const { pull, asked } = source();
  const recycled = [];
  const upload = new Upload({
    header: new Uint8Array(HEADER), size: SIZE, pull, chunkSize: 1000,
    recycle: (bytes) => recycled.push(bytes.length),
  });
  assert.deepEqual(await upload.bytes(HEADER, HEADER + 1000), expected(HEADER, HEADER + 1000));
  await upload.fill(HEADER + 2000); // the next chunk, sealed while this one travels
  assert.equal(upload.held, 2000);
  // The server acknowledged 1500 bytes (say, a resume found it there): the first piece goes.
  const body = await upload.bytes(HEADER + 1500, HEADER + 2500);
  assert.deepEqual(body, expected(HEADER + 1500, HEADER + 2500));
  assert.deepEqual(recycled, [1000]);
  assert.ok(upload.peakHeld <= 3000, upload.peakHeld);
  assert.ok(asked.every((n) => n <= 1000));
  upload.release(SIZE);
  assert.equal(upload.held, 0);
});

test("an offset before what is held is an error, not wrong bytes", async () => {
  const { pull } = source();
  const upload = new Upload({ header: new Uint8Array(HEADER), size: SIZE, pull, chunkSize: 1000 });
  await upload.bytes(HEADER + 1000, HEADER + 2000); // pulls and drops the first 1000
  await assert.rejects(upload.bytes(HEADER, HEADER + 1000), /lost its place/);
});

test("a source that ends early fails", async () => {
  const upload = new Upload({
    header: new Uint8Array(HEADER), size: SIZE, pull: async () => new Uint8Array(0), chunkSize: 1000,
  });
  await assert.rejects(upload.bytes(HEADER, HEADER + 1000), /ended before its announced size/);
});

test("a whole envelope in a Blob is read by slices after its header", async () => {
  const all = expected(0, SIZE);
  const pull = blobSource(new Blob([all]), all.subarray(0, HEADER));
  const upload = new Upload({ header: all.subarray(0, HEADER), size: SIZE, pull, chunkSize: 4096 });
  assert.equal(upload.size, SIZE);
  assert.deepEqual(await upload.bytes(HEADER, SIZE), all.subarray(HEADER));
});

// finish(): the page's side of an idempotent finish (tipline/server/api.py finish_upload).
function finishing(replies) {
  const calls = [];
  globalThis.document = { querySelector: () => ({ content: "csrf" }) };
  globalThis.fetch = async (path, init) => {
    calls.push([init.method, path]);
    const next = replies.shift();
    if (next instanceof Error) throw next;
    return new Response(JSON.stringify(next.body), {
      status: next.status, headers: { "Content-Type": "application/json" },
    });
  };
  const upload = new Upload({ header: new Uint8Array(HEADER), size: SIZE, pull: async () => null });
  upload.id = "ab".repeat(16);
  upload.pause = async () => {};
  return { upload, calls };
}

test("finish is retried after a dropped circuit and a 5xx, and a later 200 is success", async () => {
  const { upload, calls } = finishing([
    new TypeError("NetworkError when attempting to fetch resource."),
    { status: 503, body: { error: "busy" } },
    { status: 200, body: { ok: true, size: SIZE } }, // the first one had stored it
  ]);
  const done = await upload.finish();
  assert.equal(done.status, 200);
  assert.equal(calls.length, 3);
  assert.ok(calls.every(([method, path]) => method === "POST" && path.endsWith("/finish")));
});

test("finish is not retried after a refusal (4xx), and gives up after its retries", async () => {
  const refused = finishing([{ status: 400, body: { error: "the upload is not complete yet" } }]);
  await assert.rejects(refused.upload.finish(), /not complete yet/);
  assert.equal(refused.calls.length, 1);
  const down = finishing(Array.from({ length: 20 }, () => new TypeError("offline")));
  await assert.rejects(down.upload.finish(), /upload failed \(0\)/);
  assert.equal(down.calls.length, 9); // the first try and RETRIES (8) more
});
