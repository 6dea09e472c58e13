// What tools/build_static.py puts in static/build/: the pinned libsodium.js ESM build with its
// one bare import made relative, nothing else rewritten, and the word list.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { sodium } from "../../static/js/sodium.js";

const ROOT = new URL("../../", import.meta.url);
const read = (path) => readFileSync(new URL(path, ROOT), "utf-8");

test("libsodium-wrappers is the pinned version, copied with only its import rewritten", () => {
  const lock = JSON.parse(read("package-lock.json"));
  assert.equal(lock.packages["node_modules/libsodium-wrappers"].version, "0.8.4");
  assert.equal(JSON.parse(read("package.json")).dependencies["libsodium-wrappers"], "0.8.4");
  const built = read("static/build/libsodium-wrappers.js");
  const original = read("node_modules/libsodium-wrappers/dist/modules-esm/libsodium-wrappers.mjs");
  assert.equal(built.replace('from"./libsodium.js"', 'from"libsodium"'), original);
  assert.deepEqual([...built.matchAll(/from\s*"([^"]+)"/g)].map((m) => m[1]), ["./libsodium.js"]);
  assert.equal(read("static/build/libsodium.js"), read("node_modules/libsodium/dist/modules-esm/libsodium.mjs"));
});

test("the loaded libsodium runs on WebAssembly memory", () => {
  assert.ok(sodium.libsodium.HEAPU8.buffer instanceof ArrayBuffer);
  assert.match(read("static/build/libsodium.js"), /WebAssembly\.instantiate/);
  assert.equal(sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL, 3); // envelope.js's TAG_FINAL
  assert.equal(sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE, 0);
  assert.equal(sodium.crypto_secretstream_xchacha20poly1305_ABYTES, 17);
  assert.equal(sodium.crypto_box_SEALBYTES + 32, 80);
});

test("the word list is xkcdpass's EFF long list", () => {
  const text = read("static/build/eff-long.txt");
  assert.equal(text.split("\n").filter(Boolean).length, 7776);
  assert.ok(text.startsWith("abacus\nabdomen\n"));
});

test("without WebAssembly the crypto core refuses to load, with nothing to fall back to", () => {
  const sodiumUrl = new URL("static/js/sodium.js", ROOT).href;
  const script = `try { await import(${JSON.stringify(sodiumUrl)}); console.log("loaded"); }
    catch (error) { console.log("refused: " + error.message); }`;
  const run = (flags) => spawnSync(process.execPath, [...flags, "--input-type=module", "-e", script],
    { encoding: "utf-8" }).stdout.trim();
  assert.equal(run(["--noexpose-wasm"]), "refused: WebAssembly is not available, so the browser cannot encrypt");
  assert.equal(run([]), "loaded");
});
