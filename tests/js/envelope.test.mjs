// Sealing in JavaScript: round trips through the JS reader, the streaming contract (attachments
// are read only through slice(), at most one chunk at a time), sizes and refusals.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { test } from "node:test";

import {
  EnvelopeContentError, EnvelopeFormatError, EnvelopeOpenError, concat,
} from "../../static/js/encoding.js";
import {
  CHUNK_SIZE, READ_AHEAD, READ_SIZE, ciphertextSize, encodeInner, openEnvelope, parseHeader, seal,
} from "../../static/js/envelope.js";
import { paddedLength } from "../../static/js/padding.js";
import { sodium } from "../../static/js/sodium.js";

// node's generator for test data: libsodium.js's randombytes_buf asks JavaScript for every
// 4 bytes, which takes seconds per MiB.
const random = (n) => new Uint8Array(randomBytes(n));
const keypair = () => sodium.crypto_box_keypair();

async function sealAll(recipients, inner, sources = [], onProgress = null) {
  const parts = [];
  for await (const piece of seal(recipients, inner, sources, onProgress)) parts.push(piece);
  return { parts, data: concat(...parts) };
}

function submission(message, blobs, names = null) {
  return {
    kind: "submission", sealedBy: "browser", message, replyPublicKey: random(32),
    attachments: blobs.map((b, i) => ({ name: names?.[i] ?? `file-${i}`, size: b.size, type: "" })),
  };
}

// A Blob that records how it is read and refuses any read but a bounded slice.
class WatchedBlob {
  constructor(bytes) { Object.assign(this, { bytes, size: bytes.length, reads: [], pending: 0, most: 0 }); }
  slice(start, end) {
    this.reads.push(end - start);
    const piece = this.bytes.slice(start, end);
    return {
      arrayBuffer: async () => {
        this.most = Math.max(this.most, ++this.pending);
        await new Promise((resolve) => setTimeout(resolve, 1));
        this.pending--;
        return piece.buffer;
      },
    };
  }
  arrayBuffer() { throw new Error("the whole file was read at once"); }
}

test("seal then open, several sizes and two recipients", async () => {
  const [alice, bob] = [keypair(), keypair()];
  for (const sizes of [[], [0], [1000], [CHUNK_SIZE - 100, 5], [3 * CHUNK_SIZE + 1, CHUNK_SIZE]]) {
    const bodies = sizes.map(random);
    const inner = submission(sizes.length ? "" : "only a message", bodies.map((b) => new Blob([b])));
    const { data, parts } = await sealAll([alice.publicKey, bob.publicKey], inner,
      bodies.map((b) => new Blob([b])));
    const length = 4 + encodeInner(inner).length + sizes.reduce((a, b) => a + b, 0);
    assert.equal(data.length, ciphertextSize(paddedLength(length), 2));
    assert.equal(parts[0].length, parseHeader(data).size); // the header comes first, alone
    for (const reader of [alice, bob]) {
      const opened = openEnvelope(data, [reader.privateKey]);
      assert.equal(opened.inner.message, inner.message);
      assert.deepEqual(opened.inner.replyPublicKey, inner.replyPublicKey);
      assert.deepEqual(opened.attachments, bodies);
    }
    assert.throws(() => openEnvelope(data, [keypair().privateKey]), EnvelopeOpenError);
  }
});

test("attachments are read only in bounded slices, a few at a time", async () => {
  const blob = new WatchedBlob(random(3 * READ_SIZE + 77));
  const progress = [];
  const { data } = await sealAll([keypair().publicKey], submission("x", [blob]), [blob],
    (done, total) => progress.push([done, total]));
  assert.ok(data.length > blob.size);
  assert.deepEqual(blob.reads, [READ_SIZE, READ_SIZE, READ_SIZE, 77]);
  assert.ok(blob.most <= READ_AHEAD && READ_AHEAD <= 4);
  assert.ok(READ_SIZE <= 16 * CHUNK_SIZE);
  assert.equal(progress.at(-1)[0], progress.at(-1)[1]);
  assert.equal(progress.length, 5);
});

test("the ciphertext leaves chunk by chunk", async () => {
  const body = random(4 * CHUNK_SIZE);
  const { parts } = await sealAll([keypair().publicKey], submission("", [new Blob([body])]), [new Blob([body])]);
  assert.ok(parts.length >= 5);
  assert.ok(parts.slice(1).every((p) => p.length <= CHUNK_SIZE + 17));
});

test("a file that shrinks while it is read is refused", async () => {
  const blob = new Blob([random(1000)]);
  const inner = submission("", [blob]);
  inner.attachments[0].size = 2000;
  await assert.rejects(sealAll([keypair().publicKey], inner, [blob]), /changed size/);
});

test("what the format cannot carry is refused before sealing", async () => {
  const pk = keypair().publicKey;
  const bad = [
    { ...submission("x", []), replyPublicKey: null },
    { ...submission("x", []), kind: "reply" },
    { ...submission("\uD800 lone surrogate", []) },
    { ...submission("m".repeat(2 ** 19 + 1), []) },
    { ...submission("x", []), attachments: [{ name: "", size: 1, type: "" }] },
    { ...submission("x", []), attachments: [{ name: "a", size: 1, type: "tab\there" }] },
    { ...submission("x", []), attachments: Array(65).fill({ name: "a", size: 0, type: "" }) },
  ];
  for (const inner of bad) {
    const blobs = inner.attachments.map(() => new Blob([new Uint8Array(1)]));
    await assert.rejects(sealAll([pk], inner, blobs), EnvelopeContentError);
  }
  await assert.rejects(sealAll([pk, pk], submission("x", [])), /twice/);
  await assert.rejects(sealAll([], submission("x", [])), /1 to 32/);
});

test("a header that is not version 1 is a format error before any key is used", async () => {
  const me = keypair();
  const { data } = await sealAll([me.publicKey], submission("x", []));
  const cases = [[7, 2], [8, 1], [9, 17], [10, 0], [10, 33]];
  for (const [offset, value] of cases) {
    const changed = data.slice();
    changed[offset] = value;
    assert.throws(() => openEnvelope(changed, [me.privateKey]), EnvelopeFormatError);
  }
  assert.throws(() => openEnvelope(data.slice(0, 50), [me.privateKey]), EnvelopeFormatError);
});

test("every damaged byte range fails to open, with one message", async () => {
  const me = keypair();
  const { data } = await sealAll([me.publicKey], submission("x", [new Blob([random(2 * CHUNK_SIZE)])]),
    [new Blob([random(2 * CHUNK_SIZE)])]);
  const messages = new Set();
  for (const offset of [11, 20, 107, 120, 140, 200, CHUNK_SIZE + 500, data.length - 1]) {
    const changed = data.slice();
    changed[offset] ^= 1;
    assert.throws(() => openEnvelope(changed, [me.privateKey]), (e) => {
      messages.add(e.message);
      return e instanceof EnvelopeOpenError;
    });
  }
  assert.throws(() => openEnvelope(concat(data, new Uint8Array(1)), [me.privateKey]), EnvelopeOpenError);
  assert.throws(() => openEnvelope(data.slice(0, -1), [me.privateKey]), EnvelopeOpenError);
  assert.equal(messages.size, 1);
});

test("a desk's triage update (kind triage, SPEC §8.5) is refused as content, not opened", async () => {
  // Sealed by the Python desk code (the browser cannot make one): JS must refuse it cleanly.
  const reader = keypair();
  const script = [
    "import sys, base64",
    "from nacl.signing import SigningKey",
    "from tipline.crypto import keys",
    "from tipline.desk import triage",
    "k = SigningKey(bytes(range(32)))",
    "w = keys.key_id(bytes(k.verify_key.to_curve25519_public_key())).hex()",
    "u = triage.Update('a' * 32, 'b' * 32, '2026-11-30T09:00:00Z', w, (('status', 'done'),))",
    "sys.stdout.write(base64.b64encode(triage.seal_update(u, bytes(k), [base64.b64decode(sys.argv[1])])).decode())",
  ].join("\n");
  const python = new URL("../../.venv/bin/python", import.meta.url).pathname;
  const made = spawnSync(python, ["-c", script, Buffer.from(reader.publicKey).toString("base64")],
    { encoding: "utf8" });
  assert.equal(made.status, 0, made.stderr);
  const data = new Uint8Array(Buffer.from(made.stdout, "base64"));
  assert.throws(() => openEnvelope(data, [reader.privateKey]),
    (e) => e instanceof EnvelopeContentError && /kind must be submission or reply/.test(e.message));
  // Control: the same reader opens a reply sealed the same way.
  const reply = { kind: "reply", sealedBy: "desk", message: "hi", replyPublicKey: null, attachments: [] };
  const { data: ok } = await sealAll([reader.publicKey], reply);
  assert.equal(openEnvelope(ok, [reader.privateKey]).inner.message, "hi");
});
