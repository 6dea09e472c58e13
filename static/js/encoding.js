// Strict encoders and decoders for docs/SPEC.md §1 (the JavaScript twin of
// tipline/crypto/encoding.py): canonical base64, lowercase hex, UTF-8 and a strict JSON parser.
// No cryptography here; every function can take bytes from anyone.

export const MAX_SAFE_INTEGER = Number.MAX_SAFE_INTEGER; // 2^53 - 1

// The one error root. `kind` names the SPEC's error kind; `message` is for a person and never
// holds secret material or bytes from a ciphertext.
export class TiplineError extends Error {
  constructor(base, detail = null) {
    super(detail ? `${base}: ${detail}` : base);
    this.name = new.target.name;
    this.detail = detail;
  }
}

export class EnvelopeFormatError extends TiplineError {
  constructor(detail = null) { super("this is not a Tipline envelope this version can read", detail); }
  get kind() { return "format_error"; }
}

export class EnvelopeOpenError extends TiplineError {
  // Deliberately no detail: every failure after the header parses looks the same.
  constructor() {
    super("the envelope could not be opened: it is damaged, truncated, or not sealed to any of your keys");
  }
  get kind() { return "open_error"; }
}

export class EnvelopeContentError extends TiplineError {
  constructor(detail = null) { super("the envelope opened, but what is inside breaks the format", detail); }
  get kind() { return "content_error"; }
}

export class ManifestError extends TiplineError {
  constructor(detail = null) { super("the key manifest was refused", detail); }
  get kind() { return "manifest_error"; }
}

export class CodenameError extends TiplineError {
  constructor(detail = null) { super("that is not a valid codename", detail); }
  get kind() { return "codename_error"; }
}

// Something from outside is larger than this tip line accepts (a reply the page would open).
export class TooLargeError extends TiplineError {
  constructor(detail = null) { super("it is larger than this tip line accepts", detail); }
  get kind() { return "too_large"; }
}

export class WordlistError extends TiplineError {
  constructor(detail = null) {
    super("the codename word list is not the one this version of Tipline expects", detail);
  }
  get kind() { return "wordlist_error"; }
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const DECODE = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

// Standard base64 with padding (RFC 4648 §4).
export function b64e(bytes) {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63] + ALPHABET[(n >> 6) & 63] + ALPHABET[n & 63];
  }
  if (i < bytes.length) {
    const n = (bytes[i] << 16) | ((i + 1 < bytes.length ? bytes[i + 1] : 0) << 8);
    out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63];
    out += i + 1 < bytes.length ? ALPHABET[(n >> 6) & 63] + "=" : "==";
  }
  return out;
}

// Decode canonical standard base64 (no other alphabet, padding required, no whitespace, unused
// bits zero), optionally of an exact decoded size. `ErrorType` is the caller's error class.
export function b64d(text, size, ErrorType, what) {
  if (typeof text !== "string" || !B64.test(text)) throw new ErrorType(`${what} is not canonical base64`);
  const pad = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    const c = [0, 1, 2, 3].map((k) => (text[i + k] === "=" ? 0 : DECODE[text.charCodeAt(i + k)]));
    const n = (c[0] << 18) | (c[1] << 12) | (c[2] << 6) | c[3];
    const bytes = [n >> 16, (n >> 8) & 255, n & 255];
    for (const b of bytes) if (o < out.length) out[o++] = b;
  }
  if (b64e(out) !== text) throw new ErrorType(`${what} is not canonical base64`);
  if (size !== null && size !== undefined && out.length !== size) {
    throw new ErrorType(`${what} must be ${size} bytes`);
  }
  return out;
}

export function hexe(bytes) {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

// Lowercase hex of an exact decoded size.
export function hexd(text, size, ErrorType, what) {
  if (typeof text !== "string" || text.length !== 2 * size || !/^(?:[0-9a-f]{2})*$/.test(text)) {
    throw new ErrorType(`${what} must be ${2 * size} lowercase hex digits`);
  }
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

// A string with a lone surrogate has no UTF-8 form; TextEncoder would silently replace it.
export function isWellFormed(text) {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}

export function utf8(text) {
  return encoder.encode(text);
}

export function fromUtf8(bytes, ErrorType, what) {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new ErrorType(`${what} is not valid UTF-8`);
  }
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) { out.set(p, pos); pos += p.length; }
  return out;
}

const MAX_DEPTH = 32;

// Parse a UTF-8 JSON object of at most `limit` bytes, as tipline/crypto/encoding.py's load_json:
// duplicate keys, numbers with a fraction or exponent, NaN/Infinity, control characters in
// strings and trailing data are refused. JSON.parse keeps the last of two duplicate keys,
// which would let two readers see different documents, hence this parser. Integers beyond
// 2^53 become ±Infinity, which every range check refuses. Escaped lone surrogates are kept
// (as Python does) for the callers' Unicode checks to refuse.
export function loadJson(bytes, limit, ErrorType, what) {
  if (bytes.length > limit) throw new ErrorType(`${what} is larger than ${limit} bytes`);
  const text = fromUtf8(bytes, ErrorType, what);
  let pos = 0;
  const bad = () => new ErrorType(`${what} is not valid JSON`);
  const ws = () => { while (pos < text.length && " \t\n\r".includes(text[pos])) pos++; };
  const value = (depth) => {
    if (depth > MAX_DEPTH) throw bad();
    ws();
    const c = text[pos];
    if (c === "{") return object(depth);
    if (c === "[") return array(depth);
    if (c === '"') return string();
    if (c === "-" || (c >= "0" && c <= "9")) return number();
    for (const [word, v] of [["true", true], ["false", false], ["null", null]]) {
      if (text.startsWith(word, pos)) { pos += word.length; return v; }
    }
    throw bad();
  };
  const object = (depth) => {
    pos++;
    const out = Object.create(null);
    ws();
    if (text[pos] === "}") { pos++; return out; }
    for (;;) {
      ws();
      if (text[pos] !== '"') throw bad();
      const key = string();
      if (Object.prototype.hasOwnProperty.call(out, key)) {
        throw new ErrorType(`${what} is not valid JSON (a duplicate key)`);
      }
      ws();
      if (text[pos++] !== ":") throw bad();
      out[key] = value(depth + 1);
      ws();
      const sep = text[pos++];
      if (sep === "}") return out;
      if (sep !== ",") throw bad();
    }
  };
  const array = (depth) => {
    pos++;
    const out = [];
    ws();
    if (text[pos] === "]") { pos++; return out; }
    for (;;) {
      out.push(value(depth + 1));
      ws();
      const sep = text[pos++];
      if (sep === "]") return out;
      if (sep !== ",") throw bad();
    }
  };
  const string = () => {
    pos++;
    let out = "";
    for (;;) {
      if (pos >= text.length) throw bad();
      const c = text[pos++];
      if (c === '"') return out;
      if (c < " ") throw bad();
      if (c !== "\\") { out += c; continue; }
      const e = text[pos++];
      const simple = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" }[e];
      if (simple !== undefined) { out += simple; continue; }
      if (e !== "u" || !/^[0-9a-fA-F]{4}$/.test(text.slice(pos, pos + 4))) throw bad();
      out += String.fromCharCode(parseInt(text.slice(pos, pos + 4), 16));
      pos += 4;
    }
  };
  const number = () => {
    const m = /^-?(?:0|[1-9][0-9]*)/.exec(text.slice(pos, pos + 400));
    if (!m) throw bad();
    pos += m[0].length;
    if (text[pos] === "." || text[pos] === "e" || text[pos] === "E") {
      throw new ErrorType(`${what} is not valid JSON (numbers must be integers)`);
    }
    const n = Number(m[0]);
    return Number.isSafeInteger(n) ? n : n < 0 ? -Infinity : Infinity;
  };
  const result = value(0);
  ws();
  if (pos !== text.length) throw bad();
  if (result === null || typeof result !== "object" || Array.isArray(result)) {
    throw new ErrorType(`${what} must be a JSON object`);
  }
  return result;
}

export function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

// Require exactly these members: none unknown (a typo, a newer format), none missing.
export function expectMembers(obj, members, ErrorType, what) {
  const keys = Object.keys(obj);
  const extra = keys.filter((k) => !members.includes(k)).sort();
  const missing = members.filter((k) => !keys.includes(k)).sort();
  if (extra.length || missing.length) {
    const parts = [];
    if (extra.length) parts.push(`unknown ${extra.join(", ")}`);
    if (missing.length) parts.push(`missing ${missing.join(", ")}`);
    throw new ErrorType(`${what}: ${parts.join("; ")}`);
  }
}

// The `type` and `v` members every Tipline JSON document starts with.
export function expectHeader(obj, type, ErrorType, what) {
  if (obj.type !== type || obj.v !== 1) {
    throw new ErrorType(`${what} is not a version 1 ${type} document`);
  }
}

export function expectInt(value, low, high, ErrorType, what) {
  if (!Number.isInteger(value) || value < low || value > high) {
    throw new ErrorType(`${what} must be a whole number from ${low} to ${high}`);
  }
  return value;
}

// Cc, Cf, Zl, Zp and lone surrogates (Cs), as tipline/crypto/encoding.py's _CONTROL.
const CONTROL = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u;

// A non-empty string of at most `maxChars` code points with no control characters.
export function expectLabel(value, maxChars, ErrorType, what) {
  if (typeof value !== "string") throw new ErrorType(`${what} must be 1 to ${maxChars} characters`);
  const length = [...value].length;
  if (length < 1 || length > maxChars) throw new ErrorType(`${what} must be 1 to ${maxChars} characters`);
  if (CONTROL.test(value)) throw new ErrorType(`${what} must not contain control characters`);
  return value;
}

// A real `YYYY-MM-DD` date (years 1 to 9999, as Python's date), returned as it was written:
// such strings compare in date order.
export function expectDate(value, ErrorType, what) {
  const m = typeof value === "string" ? /^(\d{4})-(\d{2})-(\d{2})$/.exec(value) : null;
  if (!m) throw new ErrorType(`${what} must be a date as YYYY-MM-DD`);
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  if (year < 1 || date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 ||
      date.getUTCDate() !== day) {
    throw new ErrorType(`${what} is not a real date`);
  }
  return value;
}

// The date `days` after (or before) a `YYYY-MM-DD` date, in the same form.
export function addDays(isoDate, days) {
  const [year, month, day] = isoDate.split("-").map(Number);
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day + days);
  return isoDateOf(date);
}

export function isoDateOf(date) {
  const y = String(date.getUTCFullYear()).padStart(4, "0");
  const m = String(date.getUTCMonth() + 1).padStart(2, "0");
  const d = String(date.getUTCDate()).padStart(2, "0");
  return `${y}-${m}-${d}`;
}
