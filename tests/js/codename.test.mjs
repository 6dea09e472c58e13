// Codenames in JavaScript: the word list check, generation and normalisation (derivations are
// in the shared vectors, and compared with Python in tests/test_interop.py).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  CODENAME_WORDS, generate, loadWordlist, normalize,
} from "../../static/js/codename.js";
import { CodenameError, WordlistError } from "../../static/js/encoding.js";

const TEXT = readFileSync(new URL("../../static/build/eff-long.txt", import.meta.url), "utf-8");
const wordlist = loadWordlist(TEXT);

test("the shipped list loads; any other list is refused", () => {
  assert.equal(wordlist.words.length, 7776);
  assert.deepEqual(loadWordlist(TEXT.replaceAll("\n", "\r\n")).words, wordlist.words);
  const swapped = TEXT.replace("abacus\n", "abacas\n");
  for (const bad of [swapped, TEXT + "extra\n", TEXT.slice(0, TEXT.indexOf("\n") + 1), "", 42]) {
    assert.throws(() => loadWordlist(bad), WordlistError);
  }
});

test("generated codenames are seven listed words, and differ", () => {
  const made = new Set();
  for (let i = 0; i < 50; i++) {
    const codename = generate(wordlist);
    const words = codename.split(" ");
    assert.equal(words.length, CODENAME_WORDS);
    assert.ok(words.every((w) => wordlist.index.has(w)));
    assert.equal(normalize(wordlist, codename), codename);
    made.add(codename);
  }
  assert.equal(made.size, 50);
  assert.throws(() => generate(wordlist, 6), CodenameError);
});

test("normalisation and its refusals never repeat what was typed", () => {
  const c = "abacus abdomen abdominal abide abiding ability ablaze";
  assert.equal(normalize(wordlist, ` ${c.toUpperCase().replaceAll(" ", "\u3000\t")}\n`), c);
  assert.equal(normalize(wordlist, c.replaceAll(" ", "\x1f")), c); // Python's str.split() too
  const cases = ["abacus", `${c} secretword`, `${c} `.repeat(2), "a".repeat(1025), "😀".repeat(1025)];
  for (const typed of cases) {
    assert.throws(() => normalize(wordlist, typed), (e) => e instanceof CodenameError &&
      !e.message.includes("secretword") && !e.message.includes("abacus"));
  }
});
