// The strict decoders of static/js/encoding.js and Padmé, against the rules of docs/SPEC.md §1
// and §4.5 (the same rules tipline/crypto/encoding.py and padding.py apply).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ManifestError, addDays, b64d, b64e, expectDate, expectLabel, hexd, loadJson, utf8,
} from "../../static/js/encoding.js";
import { MIN_PLAINTEXT, paddedLength, padme } from "../../static/js/padding.js";

const E = ManifestError;

test("base64 is canonical standard base64 with padding", () => {
  for (let n = 0; n < 20; n++) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 255);
    const text = b64e(bytes);
    assert.equal(text, Buffer.from(bytes).toString("base64"));
    assert.deepEqual(b64d(text, n, E, "x"), bytes);
  }
  for (const bad of ["QQ", "QQ=", "QR==", "Q Q==", "QQ==\n", "QQ-_", "QQ==QQ==", "====", 7, null]) {
    assert.throws(() => b64d(bad, null, E, "x"), E, String(bad));
  }
  assert.throws(() => b64d("QUJD", 2, E, "x"), /must be 2 bytes/);
});

test("hex is lowercase and of an exact size", () => {
  assert.deepEqual(hexd("00ff10", 3, E, "x"), new Uint8Array([0, 255, 16]));
  for (const bad of ["00FF10", "00ff1", "00ff1g", "00ff1000"]) assert.throws(() => hexd(bad, 3, E, "x"), E);
});

test("JSON: duplicates, floats, trailing data and bad UTF-8 are refused", () => {
  const ok = loadJson(utf8('{"a": [1, -2, {"b": null}], "c": "\\u00e9\\n", "d": true}'), 100, E, "x");
  assert.deepEqual(JSON.parse(JSON.stringify(ok)), { a: [1, -2, { b: null }], c: "é\n", d: true });
  const bad = ['{"a": 1, "a": 2}', '{"a": 1.0}', '{"a": 1e3}', '{"a": NaN}', '{"a": 01}', "[1]",
    '{"a": 1} x', '{"a": "\u0001"}', '{"a": 1,}', "", '{"a"}', "{".repeat(40) + "}".repeat(40)];
  for (const text of bad) assert.throws(() => loadJson(utf8(text), 1000, E, "x"), E, text);
  assert.throws(() => loadJson(new Uint8Array([0x7b, 0xff, 0x7d]), 100, E, "x"), /UTF-8/);
  assert.throws(() => loadJson(utf8('{"a": 1}'), 5, E, "x"), /larger than 5/);
  assert.equal(loadJson(utf8('{"a": 123456789012345678901}'), 100, E, "x").a, Infinity);
});

test("labels and dates", () => {
  assert.equal(expectLabel("Alice 🐧", 64, E, "l"), "Alice 🐧");
  assert.throws(() => expectLabel("Alice 👩‍💻", 64, E, "l"), E); // a joiner is Cf, as in Python
  assert.equal(expectLabel("😀".repeat(64), 64, E, "l").length, 128); // code points, not units
  for (const bad of ["", "a\nb", "a\u200bb", "a\u2028", "\uD800", "x".repeat(65), 5]) {
    assert.throws(() => expectLabel(bad, 64, E, "l"), E);
  }
  assert.equal(expectDate("2024-02-29", E, "d"), "2024-02-29");
  for (const bad of ["2023-02-29", "2026-13-01", "0000-01-01", "2026-1-01", "2026-01-01T00"]) {
    assert.throws(() => expectDate(bad, E, "d"), E, bad);
  }
  assert.equal(addDays("2026-03-01", -1), "2026-02-28");
  assert.equal(addDays("2026-12-31", 1), "2027-01-01");
});

test("Padmé matches the paper's definition and Python's exact arithmetic", () => {
  // Computed with tipline.crypto.padding.padme (Python integers).
  const known = [[0, 0], [1, 1], [2, 2], [9, 10], [100, 104], [4097, 4352], [65537, 67584],
    [1000000, 1015808], [2 ** 40 - 1, 2 ** 40], [2 ** 40 + 1, 1116691496960]];
  for (const [n, want] of known) assert.equal(padme(n), want, String(n));
  assert.equal(paddedLength(0), MIN_PLAINTEXT);
  assert.equal(paddedLength(10), MIN_PLAINTEXT);
  for (let n = 2; n < 300000; n += 997) {
    const p = padme(n);
    assert.ok(p >= n && (p - n) / n <= 0.12 + 1e-9);
  }
});
