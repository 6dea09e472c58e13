// Sealing throughput of the browser's crypto core (static/js/envelope.js, libsodium.js
// WebAssembly) in node, against a baseline measured in the same run.
//
//   node bench/seal_node.mjs [SIZE_MIB=64] [RUNS=3]
//
// The payload is a file of SIZE_MIB random MiB, read as a file-backed Blob with slice(), as the
// Worker reads a File. The baseline is raw crypto_secretstream_xchacha20poly1305_push over the
// same bytes in the same 64 KiB chunks, from memory: the cipher alone, with no reading, framing,
// padding or copying. The ratio says what reading the file and the envelope code cost on top of
// the cipher (1.00 = nothing); the time to read the file alone is printed beside it, because on
// a machine where reading is slower than the cipher, reading is the limit. Needs `make static`.
import { randomBytes } from "node:crypto";
import { closeSync, mkdtempSync, openAsBlob, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { CHUNK_SIZE, READ_SIZE, seal } from "../static/js/envelope.js";
import { sodium } from "../static/js/sodium.js";

const sizeMib = Number(process.argv[2] ?? 64);
const runs = Number(process.argv[3] ?? 3);
if (!Number.isInteger(sizeMib) || sizeMib < 1 || !Number.isInteger(runs) || runs < 1) {
  console.error("seal_node: usage: node bench/seal_node.mjs [SIZE_MIB] [RUNS]");
  process.exit(2);
}
const size = sizeMib * 2 ** 20;

const dir = mkdtempSync(join(process.env.BENCH_TMP ?? tmpdir(), "tipline-seal-"));
try {
  const path = join(dir, "payload.bin");
  const fd = openSync(path, "w");
  const block = randomBytes(2 ** 20);
  for (let i = 0; i < sizeMib; i++) writeSync(fd, block);
  closeSync(fd);
  const recipients = [sodium.crypto_box_keypair().publicKey, sodium.crypto_box_keypair().publicKey];

  // The same bytes from memory, without a large allocation: what the envelope code costs
  // without the file reads.
  const inMemory = {
    size,
    slice: (start, end) => ({
      arrayBuffer: async () => {
        const out = new Uint8Array(end - start);
        for (let at = start; at < end;) {
          const from = at % block.length;
          const n = Math.min(end - at, block.length - from);
          out.set(block.subarray(from, from + n), at - start);
          at += n;
        }
        return out.buffer;
      },
    }),
  };

  async function sealOnce(source = null) {
    const blob = source ?? await openAsBlob(path);
    const inner = {
      kind: "submission", sealedBy: "browser", message: "", replyPublicKey: sodium.randombytes_buf(32),
      attachments: [{ name: "payload.bin", size: blob.size, type: "" }],
    };
    let out = 0;
    const start = process.hrtime.bigint();
    for await (const piece of seal(recipients, inner, [blob])) out += piece.length;
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (out <= size) throw new Error("the envelope is smaller than its payload");
    return seconds;
  }

  function rawOnce() {
    const key = sodium.crypto_secretstream_xchacha20poly1305_keygen();
    const { state } = sodium.crypto_secretstream_xchacha20poly1305_init_push(key);
    const start = process.hrtime.bigint();
    let out = 0;
    for (let offset = 0; offset < size; offset += CHUNK_SIZE) {
      const at = offset % block.length;
      const chunk = block.subarray(at, at + CHUNK_SIZE);
      const tag = offset + CHUNK_SIZE >= size ? 3 : 0;
      out += sodium.crypto_secretstream_xchacha20poly1305_push(state, chunk, null, tag).length;
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (out < size) throw new Error("the baseline pushed too little");
    return seconds;
  }

  async function readOnce() {
    const blob = await openAsBlob(path);
    const start = process.hrtime.bigint();
    for (let offset = 0; offset < size; offset += READ_SIZE) {
      await blob.slice(offset, offset + READ_SIZE).arrayBuffer();
    }
    return Number(process.hrtime.bigint() - start) / 1e9;
  }

  const best = async (f) => {
    let min = Infinity;
    for (let i = 0; i < runs; i++) min = Math.min(min, await f());
    return min;
  };
  await sealOnce(); // warm up the WebAssembly tiers before either is timed
  rawOnce();
  const tSeal = await best(sealOnce);
  const tRaw = await best(rawOnce);
  const tRead = await best(readOnce);
  const tMemory = await best(() => sealOnce(inMemory));
  const mb = size / 1e6;
  console.log(`seal in node (libsodium.js ${sodium.sodium_version_string()}, ${sizeMib} MiB, `
    + `best of ${runs}): envelope ${(mb / tSeal).toFixed(1)} MB/s, raw secretstream push `
    + `${(mb / tRaw).toFixed(1)} MB/s, ratio ${(tRaw / tSeal).toFixed(2)} (1.00 = no cost over the cipher); `
    + `reading the file alone through Blob.slice ${(mb / tRead).toFixed(1)} MB/s; sealing the same `
    + `bytes from memory ${(mb / tMemory).toFixed(1)} MB/s, ratio ${(tRaw / tMemory).toFixed(2)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
