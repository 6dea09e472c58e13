// The Worker's helpers that turn a browser File's name and type into what the inner manifest
// can carry (docs/SPEC.md §4.4). The Worker's protocol itself runs in Chromium
// (tests/browser/test_worker.py).
import assert from "node:assert/strict";
import { test } from "node:test";

import { displayName, mimeType } from "../../static/js/worker.js";

const bytes = (s) => new TextEncoder().encode(s).length;

test("file names become display names of 1 to 255 UTF-8 bytes", () => {
  assert.equal(displayName("report.pdf"), "report.pdf");
  assert.equal(displayName(""), "attachment");
  assert.equal(displayName(undefined), "attachment");
  assert.equal(displayName("a\uD800b"), "a\uFFFDb");
  const long = `${"ж".repeat(300)}.docx`;
  const cut = displayName(long);
  assert.ok(bytes(cut) <= 255 && cut.endsWith(".docx") && cut.startsWith("жжж"));
  const emoji = "😀".repeat(100); // 400 bytes, cut between characters, never inside one
  assert.equal(displayName(emoji), "😀".repeat(63));
  assert.equal(bytes(displayName("x".repeat(255))), 255);
});

test("MIME types are kept only when the format can carry them", () => {
  assert.equal(mimeType("application/pdf"), "application/pdf");
  assert.equal(mimeType(""), "");
  assert.equal(mimeType("text/plain; charset=é"), "");
  assert.equal(mimeType("x".repeat(128)), "");
  assert.equal(mimeType(undefined), "");
});
