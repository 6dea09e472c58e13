// Every shared vector in tests/vectors/ through the JavaScript readers (docs/SPEC.md §6), as
// tests/test_vectors.py runs them through Python: one expected outcome per file.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { test } from "node:test";

import { derive, loadWordlist, normalize } from "../../static/js/codename.js";
import {
  CodenameError, EnvelopeContentError, EnvelopeFormatError, EnvelopeOpenError, ManifestError,
  TiplineError, b64d, b64e, concat, fromUtf8,
} from "../../static/js/encoding.js";
import { StreamReader, openEnvelope, openEnvelopeStream } from "../../static/js/envelope.js";
import { verifyManifest } from "../../static/js/manifest.js";
import { PowError, solutionHash, solves } from "../../static/js/pow.js";

const ROOT = new URL("../../", import.meta.url);
const DIR = new URL("tests/vectors/", ROOT);
// Key requests (kind "key_request") are read only by the signing desk, and signed triage updates
// (kind "triage", SPEC §8.5) only by journalist desks, in Python: the browser has no reader for
// either, so they are the two kinds this suite leaves out, by name.
const BROWSER_KINDS = new Set(["envelope", "manifest", "codename", "pow"]);
const ALL = readdirSync(DIR).filter((f) => f.endsWith(".json")).sort();
const FILES = ALL.filter((f) => BROWSER_KINDS.has(JSON.parse(readFileSync(new URL(f, DIR))).kind));
const ERRORS = {
  format_error: EnvelopeFormatError,
  open_error: EnvelopeOpenError,
  content_error: EnvelopeContentError,
  manifest_error: ManifestError,
  codename_error: CodenameError,
  pow_error: PowError,
};
const wordlist = loadWordlist(readFileSync(new URL("static/build/eff-long.txt", ROOT), "utf-8"));
const bytes = (text) => b64d(text, null, TiplineError, "vector field");

function load(name) {
  return JSON.parse(readFileSync(new URL(name, DIR), "utf-8"));
}

// The source line that threw `error`, from the first frame of its stack in static/js/.
const SOURCES = new Map();
function raiseSite(error) {
  const frame = /\((file:\/\/[^)]*static\/js\/[^):]+):(\d+):\d+\)/.exec(error.stack ?? "")
    ?? /at (file:\/\/[^\s]*static\/js\/[^:\s]+):(\d+):\d+/.exec(error.stack ?? "");
  if (!frame) return "";
  if (!SOURCES.has(frame[1])) SOURCES.set(frame[1], readFileSync(new URL(frame[1]), "utf-8").split("\n"));
  return SOURCES.get(frame[1])[Number(frame[2]) - 1];
}

// The error is the one the vector names: its class, and its detail, or for an open error
// (whose message is always the same) the check it is for, by the line that threw it.
function isExpected(doc) {
  return (error) => {
    assert.equal(error.constructor, ERRORS[doc.outcome], `${doc.name}: ${error.stack}`);
    if (doc.outcome === "open_error") {
      const checks = /check: ([a-z-]+(?:, [a-z-]+)*)/.exec(raiseSite(error))?.[1].split(", ") ?? [];
      assert.ok(checks.includes(doc.check), `${doc.name}: ${raiseSite(error)}`);
    } else {
      assert.equal(error.detail, doc.detail, doc.name);
    }
    return true;
  };
}

// The inner manifest as Python's json.loads(inner.encode()) shows it.
function innerJson(inner) {
  return {
    type: "tipline-inner", v: 1, kind: inner.kind, sealed_by: inner.sealedBy, message: inner.message,
    reply_public_key: inner.replyPublicKey === null ? null : b64e(inner.replyPublicKey),
    attachments: inner.attachments.map((a) => ({ name: a.name, size: a.size, type: a.type })),
  };
}

const RUN = {
  envelope(doc) {
    const { inner, attachments } = openEnvelope(bytes(doc.envelope), doc.identities.map(bytes));
    assert.deepEqual(innerJson(inner), doc.expected.inner);
    assert.deepEqual(attachments.map(b64e), doc.expected.attachments);
  },
  manifest(doc) {
    const m = verifyManifest(bytes(doc.signed), bytes(doc.org_public_key), doc.today, doc.installed_version);
    assert.equal(m.version, doc.expected.version);
    assert.deepEqual(
      m.recipients.map((r) => ({
        key_id: r.keyId, public_key: b64e(r.publicKey), label: r.label, account: r.account })),
      // v1 vectors predate accounts: their entries have none to compare
      doc.expected.recipients.map((e) => ({ account: null, ...e })));
  },
  codename(doc) {
    const norm = normalize(wordlist, doc.codename);
    const derived = derive(norm);
    assert.equal(norm, doc.expected.normalized);
    assert.equal(b64e(derived.loginToken), doc.expected.login_token);
    assert.equal(b64e(derived.tokenHash), doc.expected.token_hash);
    assert.equal(b64e(derived.replyPublicKey), doc.expected.reply_public_key);
  },
  pow(doc) {
    const challenge = bytes(doc.challenge);
    const nonce = bytes(doc.nonce);
    assert.equal(b64e(solutionHash(challenge, nonce)), doc.hash);
    if (!solves(challenge, nonce, doc.difficulty)) throw new PowError("its hash starts with too few zero bits");
  },
};

test("every outcome is covered", () => {
  const outcomes = new Set(FILES.map((f) => { const d = load(f); return `${d.kind}/${d.outcome}`; }));
  assert.ok(FILES.length >= 30);
  const skipped = ALL.filter((f) => !FILES.includes(f)).map((f) => JSON.parse(readFileSync(new URL(f, DIR))).kind);
  assert.deepEqual([...new Set(skipped)], ["key_request", "triage"]);
  for (const pair of ["envelope/ok", "envelope/format_error", "envelope/open_error",
    "envelope/content_error", "manifest/ok", "manifest/manifest_error", "codename/ok",
    "codename/codename_error", "pow/ok", "pow/pow_error"]) {
    assert.ok(outcomes.has(pair), pair);
  }
});

for (const file of FILES) {
  test(`vector ${file}`, () => {
    const doc = load(file);
    if (doc.outcome === "ok") {
      RUN[doc.kind](doc);
    } else {
      // Exactly the named error class (an open error must not pass as a format error) and check.
      assert.throws(() => RUN[doc.kind](doc), isExpected(doc));
    }
  });
}

test("every open check in envelope.js has a vector", () => {
  const source = readFileSync(new URL("static/js/envelope.js", ROOT), "utf-8");
  const sites = new Set([...source.matchAll(/check: ([a-z-]+(?:, [a-z-]+)*)/g)]
    .flatMap((m) => m[1].split(", ")));
  sites.delete("stream-header"); // libsodium accepts any 24-byte stream header
  const named = new Set(FILES.map((f) => load(f).check));
  assert.ok(sites.size >= 5);
  for (const site of sites) assert.ok(named.has(site), site);
});

test("open errors all read the same", () => {
  const messages = new Set();
  for (const file of FILES) {
    const doc = load(file);
    if (doc.outcome !== "open_error") continue;
    try {
      RUN.envelope(doc);
      assert.fail(`${file} opened`);
    } catch (error) {
      assert.ok(error instanceof EnvelopeOpenError);
      messages.add(error.message);
    }
  }
  assert.deepEqual([...messages], ["the envelope could not be opened: it is damaged, truncated, "
    + "or not sealed to any of your keys"]);
});

test("a vector's reply envelope text decodes as UTF-8", () => {
  const doc = load("envelope-ok-reply.json");
  const { inner } = openEnvelope(bytes(doc.envelope), doc.identities.map(bytes));
  assert.equal(typeof inner.message, "string");
  assert.equal(fromUtf8(new TextEncoder().encode(inner.message), TiplineError, "x"), inner.message);
});

// The streaming opener (replies in the Worker) reads every envelope vector to the same
// outcome, fed in pieces of awkward sizes so no chunk or header arrives whole.
async function openStreamed(doc, pieceSize) {
  const data = bytes(doc.envelope);
  let pos = 0;
  const reader = new StreamReader(async () => {
    if (pos >= data.length) return null;
    const piece = data.slice(pos, pos + pieceSize);
    pos += pieceSize;
    return piece;
  });
  const got = [];
  const inner = await openEnvelopeStream(reader, doc.identities.map(bytes), async () => {
    const parts = [];
    got.push(parts);
    return async (piece) => { parts.push(piece.slice()); };
  });
  return { inner, attachments: got.map((parts) => concat(...parts)) };
}

for (const file of FILES.filter((f) => load(f).kind === "envelope")) {
  for (const pieceSize of [7, 65553, 1 << 20]) {
    test(`vector ${file} streamed in pieces of ${pieceSize}`, async () => {
      const doc = load(file);
      if (doc.outcome === "ok") {
        const { inner, attachments } = await openStreamed(doc, pieceSize);
        assert.deepEqual(innerJson(inner), doc.expected.inner);
        assert.deepEqual(attachments.map(b64e), doc.expected.attachments);
      } else {
        await assert.rejects(openStreamed(doc, pieceSize), isExpected(doc));
      }
    });
  }
}
