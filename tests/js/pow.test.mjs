// The page's proof-of-work solver (static/js/pow.js, docs/SPEC.md §10) against the shared
// vectors: it must find the same first nonce as tipline/crypto/proof_of_work.py, and what it
// finds must pass the check. That the server accepts it is tests/server/test_proof_of_work.py
// (through tests/js/tools/pow.mjs).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { TiplineError, b64d, b64e } from "../../static/js/encoding.js";
import { PowError, leadingZeroBits, solutionHash, solve, solves } from "../../static/js/pow.js";

const vector = (name) => JSON.parse(readFileSync(new URL(`../vectors/${name}.json`, import.meta.url)));
const bytes = (text) => b64d(text, null, TiplineError, "vector field");

test("the solver finds the vector's nonce, the first that solves it", () => {
  const doc = vector("pow-ok");
  const nonce = solve(bytes(doc.challenge), doc.difficulty);
  assert.equal(b64e(nonce), doc.nonce);
  assert.ok(solves(bytes(doc.challenge), nonce, doc.difficulty));
  assert.equal(b64e(solutionHash(bytes(doc.challenge), nonce)), doc.hash);
});

test("a nonce one bit short is refused (the control)", () => {
  const doc = vector("pow-one-bit-short");
  const challenge = bytes(doc.challenge);
  assert.equal(leadingZeroBits(solutionHash(challenge, bytes(doc.nonce))), doc.difficulty - 1);
  assert.ok(!solves(challenge, bytes(doc.nonce), doc.difficulty));
  assert.ok(solves(challenge, bytes(doc.nonce), doc.difficulty - 1));
});

test("leading zero bits are counted across bytes", () => {
  assert.equal(leadingZeroBits(Uint8Array.of(0x80)), 0);
  assert.equal(leadingZeroBits(Uint8Array.of(0x01)), 7);
  assert.equal(leadingZeroBits(Uint8Array.of(0, 0x10)), 11);
  assert.equal(leadingZeroBits(Uint8Array.of(0, 0)), 16);
});

test("bad challenges and difficulties are refused before any work", () => {
  const challenge = bytes(vector("pow-ok").challenge);
  assert.throws(() => solve(challenge.subarray(1), 8), PowError);
  assert.throws(() => solve(challenge, 25), PowError);
  assert.throws(() => solve(challenge, -1), PowError);
  assert.throws(() => solve(challenge, 1.5), PowError);
  assert.equal(solve(challenge, 0).length, 8);
});
