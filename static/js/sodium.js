// libsodium.js for the browser crypto core: the ESM build copied into static/build/ by
// tools/build_static.py (WebAssembly only; it embeds its module and has no asm.js fallback).
// Importing this module waits for libsodium to be ready, so every other module can use `sodium`
// at once. It fails, rather than falling back to anything, when WebAssembly is missing or
// blocked: then the page uses the server-side path (docs/BROWSER.md).

if (typeof WebAssembly !== "object" || typeof WebAssembly.instantiate !== "function") {
  throw new Error("WebAssembly is not available, so the browser cannot encrypt");
}

const module = await import("../build/libsodium-wrappers.js");
await module.ready;

export const sodium = module.default;

// The primitives of docs/SPEC.md §1, with their names (tipline/crypto/primitives.py).
const ascii = (text) => new TextEncoder().encode(text);
export const DS_KEY_ID = ascii("tipline/v1/key-id");
export const DS_FINGERPRINT = ascii("tipline/v1/fingerprint");
export const DS_WORDLIST = ascii("tipline/v1/codename-wordlist");
export const DS_LOGIN_TOKEN = ascii("tipline/v1/codename/login-token");
export const DS_TOKEN_HASH = ascii("tipline/v1/codename/token-hash");
export const DS_REPLY_SEED = ascii("tipline/v1/codename/reply-key-seed");
export const LABEL_PAYLOAD_KEY = ascii("tipline/v1/payload-key");
export const LABEL_HEADER_MAC = ascii("tipline/v1/header-mac-key");
export const SIG_KEY_MANIFEST = ascii("tipline/v1/key-manifest\0");

// DS(domain, data, n): BLAKE2b keyed by a domain string. libsodium.js has no BLAKE2b
// personalisation; distinct 16-64 byte keys give independent hash functions.
export function ds(domain, data, size) {
  if (domain.length < 16 || domain.length > 64) throw new RangeError("domain strings are 16 to 64 bytes");
  return sodium.crypto_generichash(size, data, domain);
}

// PRF(key, label, n): BLAKE2b keyed by a uniformly random 32-byte key, over a label.
export function prf(key, label, size) {
  if (key.length !== 32) throw new RangeError("PRF keys are 32 bytes");
  return sodium.crypto_generichash(size, label, key);
}

// A 32-byte BLAKE2b MAC.
export function mac(key, data) {
  return sodium.crypto_generichash(32, data, key);
}

// Constant-time comparison (sodium_memcmp), so timing does not tell how many bytes matched.
export function equal(a, b) {
  return a.length === b.length && sodium.memcmp(a, b);
}

// The 16-byte id of an X25519 public key (docs/SPEC.md §2.1).
export function keyId(publicKey) {
  if (publicKey.length !== 32) throw new RangeError("a public key is 32 bytes");
  return ds(DS_KEY_ID, publicKey, 16);
}
