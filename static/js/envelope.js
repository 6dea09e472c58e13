// Envelope v1 (docs/SPEC.md §4): streaming seal, and open for replies. The twin of
// tipline/crypto/envelope.py, format.py and inner.py, byte for byte.
//
// Sealing never holds more than one plaintext chunk: attachments are read from Blobs (a File
// is a Blob) with slice(), 64 KiB at a time, and ciphertext leaves as it is made.
import {
  EnvelopeContentError, EnvelopeFormatError, EnvelopeOpenError, b64d, b64e, concat, expectHeader,
  expectInt, expectMembers, isObject, isWellFormed, loadJson, utf8,
} from "./encoding.js";
import { paddedLength } from "./padding.js";
import { LABEL_HEADER_MAC, LABEL_PAYLOAD_KEY, equal, keyId, mac, prf, sodium } from "./sodium.js";

export const MAGIC = utf8("TIPLINE");
export const VERSION = 1;
export const CHUNK_LOG2 = 16;
export const CHUNK_SIZE = 2 ** CHUNK_LOG2;
// Attachments are read from their Blob in slices of this size (16 chunks): fewer, larger reads
// are faster in browsers and node alike; READ_AHEAD of them are read while one is encrypted.
export const READ_SIZE = 16 * CHUNK_SIZE;
export const READ_AHEAD = 2;
export const PREAMBLE = concat(MAGIC, new Uint8Array([VERSION, 0, CHUNK_LOG2]));
export const MAX_STANZAS = 32;
export const KEY_ID_SIZE = 16;
export const SEALED_KEY_SIZE = 80; // crypto_box_SEALBYTES (48) + a 32-byte file key
export const STANZA_SIZE = KEY_ID_SIZE + SEALED_KEY_SIZE;
export const SS_HEADER_SIZE = 24;
export const MAC_SIZE = 32;
export const ABYTES = 17;
export const MAX_INNER_MANIFEST = 2 ** 20;
export const MAX_MESSAGE = 2 ** 19;
export const MAX_ATTACHMENTS = 64;
export const MAX_NAME_BYTES = 255;
export const MAX_TYPE_CHARS = 127;
export const MAX_PLAINTEXT = 2 ** 40;
const KINDS = ["submission", "reply"];
const SEALERS = ["browser", "server", "desk"];
const TAG_MESSAGE = 0; // crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
const TAG_FINAL = 3; // crypto_secretstream_xchacha20poly1305_TAG_FINAL

export function headerSize(count) {
  return PREAMBLE.length + 1 + count * STANZA_SIZE + SS_HEADER_SIZE + MAC_SIZE;
}

// The exact envelope size for a padded plaintext of `plaintextSize` bytes.
export function ciphertextSize(plaintextSize, count) {
  const chunks = Math.max(1, Math.ceil(plaintextSize / CHUNK_SIZE));
  return headerSize(count) + plaintextSize + chunks * ABYTES;
}

// §4.1: the fixed fields, checked before any cryptography. Returns the stanza count.
function checkPreamble(data) {
  if (data.length < PREAMBLE.length + 1) throw new EnvelopeFormatError("it ends before its header does");
  if (!MAGIC.every((b, i) => data[i] === b)) {
    throw new EnvelopeFormatError("it does not start with the Tipline magic bytes");
  }
  if (data[7] !== VERSION) {
    throw new EnvelopeFormatError(`its version ${data[7]} is not supported (only 1 is)`);
  }
  if (data[8] !== 0) throw new EnvelopeFormatError("its reserved flags are not zero");
  if (data[9] !== CHUNK_LOG2) throw new EnvelopeFormatError("its chunk size is not the one version 1 uses");
  const count = data[10];
  if (count < 1 || count > MAX_STANZAS) {
    throw new EnvelopeFormatError(`it has ${count} recipients; 1 to ${MAX_STANZAS} are allowed`);
  }
  return count;
}

// Parse a header from the start of `data` (which may hold more than the header).
export function parseHeader(data) {
  const count = checkPreamble(data);
  const size = headerSize(count);
  if (data.length < size) throw new EnvelopeFormatError("it ends before its header does");
  const stanzas = [];
  let pos = PREAMBLE.length + 1;
  for (let i = 0; i < count; i++, pos += STANZA_SIZE) {
    stanzas.push({
      keyId: data.slice(pos, pos + KEY_ID_SIZE),
      sealedKey: data.slice(pos + KEY_ID_SIZE, pos + STANZA_SIZE),
    });
  }
  if (new Set(stanzas.map((s) => b64e(s.keyId))).size !== count) {
    throw new EnvelopeFormatError("two of its recipients have the same key id");
  }
  return {
    stanzas,
    ssHeader: data.slice(pos, pos + SS_HEADER_SIZE),
    mac: data.slice(pos + SS_HEADER_SIZE, size),
    macInput: data.slice(0, pos + SS_HEADER_SIZE),
    size,
  };
}

function fileKeys(fileKey) {
  return { payloadKey: prf(fileKey, LABEL_PAYLOAD_KEY, 32), macKey: prf(fileKey, LABEL_HEADER_MAC, 32) };
}

// --- the inner manifest (§4.4) ---

function checkAttachment(a) {
  const nameBytes = typeof a.name === "string" && isWellFormed(a.name) ? utf8(a.name).length : 0;
  if (nameBytes < 1 || nameBytes > MAX_NAME_BYTES) {
    throw new EnvelopeContentError(`an attachment name must be 1 to ${MAX_NAME_BYTES} bytes`);
  }
  expectInt(a.size, 0, MAX_PLAINTEXT, EnvelopeContentError, "attachment size");
  if (typeof a.type !== "string" || a.type.length > MAX_TYPE_CHARS || !/^[\x20-\x7e]*$/.test(a.type)) {
    throw new EnvelopeContentError(
      `an attachment type must be at most ${MAX_TYPE_CHARS} printable ASCII characters`);
  }
}

// Check what an envelope says about itself (tipline/crypto/inner.py's Inner).
export function checkInner(inner) {
  if (!KINDS.includes(inner.kind)) throw new EnvelopeContentError("kind must be submission or reply");
  if (!SEALERS.includes(inner.sealedBy)) {
    throw new EnvelopeContentError("sealed_by must be browser, server or desk");
  }
  if (typeof inner.message !== "string" || !isWellFormed(inner.message)) {
    throw new EnvelopeContentError("the message is not valid Unicode");
  }
  if (utf8(inner.message).length > MAX_MESSAGE) {
    throw new EnvelopeContentError(`the message is longer than ${MAX_MESSAGE} bytes`);
  }
  if (inner.replyPublicKey !== null && inner.replyPublicKey.length !== 32) {
    throw new EnvelopeContentError("the reply key must be 32 bytes");
  }
  if ((inner.kind === "submission") !== (inner.replyPublicKey !== null)) {
    throw new EnvelopeContentError("a submission has a reply key and a reply has none");
  }
  if (inner.attachments.length > MAX_ATTACHMENTS) {
    throw new EnvelopeContentError(`more than ${MAX_ATTACHMENTS} attachments`);
  }
  inner.attachments.forEach(checkAttachment);
  return inner;
}

// The inner manifest's JSON bytes, compact with sorted keys as Python writes them.
export function encodeInner(inner) {
  checkInner(inner);
  const data = utf8(JSON.stringify({
    attachments: inner.attachments.map((a) => ({ name: a.name, size: a.size, type: a.type })),
    kind: inner.kind,
    message: inner.message,
    reply_public_key: inner.replyPublicKey === null ? null : b64e(inner.replyPublicKey),
    sealed_by: inner.sealedBy,
    type: "tipline-inner",
    v: 1,
  }));
  if (data.length > MAX_INNER_MANIFEST) throw new EnvelopeContentError("the inner manifest is too large");
  return data;
}

export function parseInner(bytes) {
  const obj = loadJson(bytes, MAX_INNER_MANIFEST, EnvelopeContentError, "inner manifest");
  expectHeader(obj, "tipline-inner", EnvelopeContentError, "inner manifest");
  expectMembers(obj, ["type", "v", "kind", "sealed_by", "message", "reply_public_key", "attachments"],
    EnvelopeContentError, "inner manifest");
  if (!Array.isArray(obj.attachments) || obj.attachments.length > MAX_ATTACHMENTS) {
    throw new EnvelopeContentError(`attachments must be a list of at most ${MAX_ATTACHMENTS}`);
  }
  const attachments = obj.attachments.map((a) => {
    if (!isObject(a)) throw new EnvelopeContentError("an attachment must be a JSON object");
    expectMembers(a, ["name", "size", "type"], EnvelopeContentError, "attachment");
    checkAttachment(a);
    return { name: a.name, size: a.size, type: a.type };
  });
  const replyPublicKey = obj.reply_public_key === null ? null
    : b64d(obj.reply_public_key, 32, EnvelopeContentError, "reply key");
  if (typeof obj.message !== "string") throw new EnvelopeContentError("the message must be text");
  return checkInner({
    kind: obj.kind, sealedBy: obj.sealed_by, message: obj.message, replyPublicKey, attachments,
  });
}

// --- sealing ---

// Cuts plaintext into chunks; the chunk that reaches `total` bytes is tagged FINAL.
class ChunkWriter {
  constructor(payloadKey, total) {
    const { state, header } = sodium.crypto_secretstream_xchacha20poly1305_init_push(payloadKey);
    Object.assign(this, { state, ssHeader: header, total, written: 0, first: true });
    this.buffer = new Uint8Array(CHUNK_SIZE);
    this.filled = 0;
  }

  // Returns the ciphertext chunks completed by `data` (possibly none).
  write(data) {
    const out = [];
    let pos = 0;
    while (pos < data.length) {
      if (this.filled === 0 && data.length - pos >= CHUNK_SIZE) {
        // A whole chunk in place: no copy through the buffer.
        out.push(this.push(data.subarray(pos, pos + CHUNK_SIZE)));
        pos += CHUNK_SIZE;
        continue;
      }
      const step = Math.min(data.length - pos, CHUNK_SIZE - this.filled);
      this.buffer.set(data.subarray(pos, pos + step), this.filled);
      this.filled += step;
      pos += step;
      if (this.filled === CHUNK_SIZE) out.push(this.push(this.buffer));
    }
    return out;
  }

  push(chunk) {
    this.written += chunk.length;
    this.filled = 0;
    if (this.written > this.total) throw new Error("more plaintext than announced");
    const tag = this.written === this.total ? TAG_FINAL : TAG_MESSAGE;
    const ad = this.first ? concat(PREAMBLE, this.ssHeader) : null;
    this.first = false;
    return sodium.crypto_secretstream_xchacha20poly1305_push(this.state, chunk, ad, tag);
  }

  close() {
    const out = this.filled ? [this.push(this.buffer.subarray(0, this.filled))] : [];
    if (this.written !== this.total) throw new Error("less plaintext than announced");
    return out;
  }
}

function sealHeader(recipients, fileKey, ssHeader, macKey) {
  if (recipients.length < 1 || recipients.length > MAX_STANZAS) {
    throw new RangeError(`an envelope has 1 to ${MAX_STANZAS} recipients`);
  }
  if (new Set(recipients.map(b64e)).size !== recipients.length) {
    throw new RangeError("a recipient is listed twice");
  }
  const parts = [PREAMBLE, new Uint8Array([recipients.length])];
  for (const pk of recipients) parts.push(keyId(pk), sodium.crypto_box_seal(fileKey, pk));
  parts.push(ssHeader);
  const body = concat(...parts);
  return concat(body, mac(macKey, body));
}

// Seal `inner` ({kind, sealedBy, message, replyPublicKey, attachments: [{name, size, type}]})
// and one Blob per attachment, of exactly its announced size, to the recipients' X25519 public
// keys. An async generator: the header first, then each ciphertext chunk as it is made.
// `onProgress(done, total)` counts plaintext bytes.
export async function* seal(recipients, inner, sources = [], onProgress = null) {
  if (sources.length !== inner.attachments.length) throw new RangeError("one source per attachment");
  const manifest = encodeInner(inner);
  const length = 4 + manifest.length + inner.attachments.reduce((n, a) => n + a.size, 0);
  if (length > MAX_PLAINTEXT) throw new EnvelopeContentError("the submission is too large");
  const total = paddedLength(length);
  const fileKey = sodium.randombytes_buf(32);
  const { payloadKey, macKey } = fileKeys(fileKey);
  const writer = new ChunkWriter(payloadKey, total);
  yield sealHeader(recipients, fileKey, writer.ssHeader, macKey);
  sodium.memzero(fileKey);
  const prefix = new Uint8Array(4);
  new DataView(prefix.buffer).setUint32(0, manifest.length);
  yield* writer.write(concat(prefix, manifest));
  let done = 4 + manifest.length;
  for (let i = 0; i < sources.length; i++) {
    const { size } = inner.attachments[i];
    if (sources[i].size !== size) throw new RangeError("an attachment changed size while it was read");
    // READ_AHEAD slices are read while the current one is encrypted: at most READ_AHEAD + 1
    // slices of plaintext are in memory, whatever the file's size.
    const read = (offset) => {
      const end = Math.min(offset + READ_SIZE, size);
      const promise = sources[i].slice(offset, end).arrayBuffer().then((buffer) => {
        if (buffer.byteLength !== end - offset) throw new RangeError("an attachment is shorter than announced");
        return new Uint8Array(buffer);
      });
      promise.catch(() => {}); // its error is raised when it is awaited, not as unhandled
      return promise;
    };
    const pending = [];
    let next = 0;
    const fill = () => {
      for (; pending.length < READ_AHEAD && next < size; next += READ_SIZE) pending.push(read(next));
    };
    fill();
    while (pending.length) {
      const piece = await pending.shift();
      fill();
      yield* writer.write(piece);
      done += piece.length;
      onProgress?.(done, length);
    }
  }
  const zeros = new Uint8Array(CHUNK_SIZE);
  for (let padding = total - length; padding > 0;) {
    const step = Math.min(padding, CHUNK_SIZE);
    yield* writer.write(zeros.subarray(0, step));
    padding -= step;
  }
  yield* writer.close();
  onProgress?.(length, length);
}

// --- opening (replies, vectors) ---

// Read the header and find the file key with one of the X25519 secret keys.
function unwrap(data, identities) {
  const header = parseHeader(data);
  const byId = new Map();
  for (const sk of identities) {
    if (sk.length !== 32) throw new RangeError("a secret key is 32 bytes");
    const pk = sodium.crypto_scalarmult_base(sk);
    byId.set(b64e(keyId(pk)), { sk, pk });
  }
  for (const stanza of header.stanzas) {
    const identity = byId.get(b64e(stanza.keyId));
    if (!identity) continue;
    let fileKey;
    try {
      fileKey = sodium.crypto_box_seal_open(stanza.sealedKey, identity.pk, identity.sk);
    } catch {
      continue;
    }
    if (fileKey && fileKey.length === 32 && equal(mac(fileKeys(fileKey).macKey, header.macInput), header.mac)) {
      return { header, fileKey };
    }
    throw new EnvelopeOpenError(); // check: header-mac
  }
  throw new EnvelopeOpenError(); // check: no-key
}

// Authenticated plaintext chunks; enforces FINAL, no empty chunks, no trailing data (§4.3).
function* chunks(data, start, payloadKey, ssHeader) {
  let state;
  try {
    state = sodium.crypto_secretstream_xchacha20poly1305_init_pull(ssHeader, payloadKey);
  } catch {
    throw new EnvelopeOpenError(); // check: stream-header
  }
  let ad = concat(PREAMBLE, ssHeader);
  let pos = start;
  const full = CHUNK_SIZE + ABYTES;
  for (;;) {
    const piece = data.subarray(pos, pos + full);
    pos += piece.length;
    let result = false;
    if (piece.length > ABYTES) {
      try {
        result = sodium.crypto_secretstream_xchacha20poly1305_pull(state, piece, ad);
      } catch {
        result = false;
      }
    }
    if (!result) throw new EnvelopeOpenError(); // check: chunk-auth, missing-final
    ad = null;
    if (result.tag === TAG_FINAL) {
      if (pos < data.length) throw new EnvelopeOpenError(); // check: trailing-data
      yield result.message;
      return;
    }
    if (result.tag !== TAG_MESSAGE || piece.length < full) throw new EnvelopeOpenError(); // check: non-final-tag
    yield result.message;
  }
}

// A reader over the chunk stream that hands out exact byte counts.
class Plaintext {
  constructor(iterator) {
    Object.assign(this, { iterator, buffer: new Uint8Array(0), pos: 0 });
  }

  * pieces(size) {
    while (size > 0) {
      if (this.pos === this.buffer.length) {
        const next = this.iterator.next();
        if (next.done) throw new EnvelopeContentError("the plaintext is shorter than it says");
        this.buffer = next.value;
        this.pos = 0;
      }
      const step = Math.min(size, this.buffer.length - this.pos);
      yield this.buffer.subarray(this.pos, this.pos + step);
      this.pos += step;
      size -= step;
    }
  }

  read(size) {
    return concat(...this.pieces(size));
  }

  atEnd() {
    return this.pos === this.buffer.length && this.iterator.next().done;
  }
}

// Open a whole envelope (a Uint8Array) with any of the X25519 secret keys in `identities`.
// Returns {inner, attachments: Uint8Array[]}. Throws EnvelopeFormatError, EnvelopeOpenError or
// EnvelopeContentError (§4.7).
export function openEnvelope(data, identities) {
  const { header, fileKey } = unwrap(data, identities);
  const { payloadKey } = fileKeys(fileKey);
  sodium.memzero(fileKey);
  const plain = new Plaintext(chunks(data, header.size, payloadKey, header.ssHeader));
  const size = new DataView(plain.read(4).buffer).getUint32(0);
  if (size < 1 || size > MAX_INNER_MANIFEST) {
    throw new EnvelopeContentError(`the inner manifest length must be 1 to ${MAX_INNER_MANIFEST}`);
  }
  const inner = parseInner(plain.read(size));
  const length = 4 + size + inner.attachments.reduce((n, a) => n + a.size, 0);
  if (length > MAX_PLAINTEXT) {
    throw new EnvelopeContentError("the attachments are larger than the format allows");
  }
  // Sizes are checked against the data actually there, piece by piece: a claimed 2^40 bytes
  // is never allocated up front.
  const attachments = inner.attachments.map((a) => concat(...plain.pieces(a.size)));
  for (const piece of plain.pieces(paddedLength(length) - length)) {
    if (!sodium.is_zero(piece)) throw new EnvelopeContentError("the padding is not zero");
  }
  if (!plain.atEnd()) throw new EnvelopeContentError("the plaintext is longer than its padded length");
  return { inner, attachments };
}

// --- opening as a stream (replies of any size, in the Worker) ---

// Exact byte counts from an async source of pieces: `next()` gives the next Uint8Array, or
// null at the end. Holds at most one piece.
export class StreamReader {
  constructor(next) {
    Object.assign(this, { next, buffer: new Uint8Array(0), pos: 0, ended: false });
  }

  // Up to `size` bytes: exactly `size` unless the stream ends first.
  async read(size) {
    const out = new Uint8Array(size);
    let filled = 0;
    while (filled < size && !(this.pos === this.buffer.length && this.ended)) {
      if (this.pos === this.buffer.length) {
        const piece = await this.next();
        if (piece === null || piece === undefined) { this.ended = true; continue; }
        this.buffer = piece;
        this.pos = 0;
        continue;
      }
      const step = Math.min(size - filled, this.buffer.length - this.pos);
      out.set(this.buffer.subarray(this.pos, this.pos + step), filled);
      this.pos += step;
      filled += step;
    }
    return filled === size ? out : out.subarray(0, filled);
  }
}

// The authenticated chunks of a stream, as `chunks` does for a whole envelope (§4.3).
async function* streamChunks(reader, payloadKey, ssHeader) {
  let state;
  try {
    state = sodium.crypto_secretstream_xchacha20poly1305_init_pull(ssHeader, payloadKey);
  } catch {
    throw new EnvelopeOpenError(); // check: stream-header
  }
  let ad = concat(PREAMBLE, ssHeader);
  const full = CHUNK_SIZE + ABYTES;
  for (;;) {
    const piece = await reader.read(full);
    let result = false;
    if (piece.length > ABYTES) {
      try {
        result = sodium.crypto_secretstream_xchacha20poly1305_pull(state, piece, ad);
      } catch {
        result = false;
      }
    }
    if (!result) throw new EnvelopeOpenError(); // check: chunk-auth, missing-final
    ad = null;
    if (result.tag === TAG_FINAL) {
      if ((await reader.read(1)).length) throw new EnvelopeOpenError(); // check: trailing-data
      yield result.message;
      return;
    }
    if (result.tag !== TAG_MESSAGE || piece.length < full) throw new EnvelopeOpenError(); // check: non-final-tag
    yield result.message;
  }
}

// Plaintext's exact byte counts over the async chunk stream.
class StreamPlaintext {
  constructor(chunks) {
    Object.assign(this, { chunks, buffer: new Uint8Array(0), pos: 0 });
  }

  async* pieces(size) {
    while (size > 0) {
      if (this.pos === this.buffer.length) {
        const next = await this.chunks.next();
        if (next.done) throw new EnvelopeContentError("the plaintext is shorter than it says");
        this.buffer = next.value;
        this.pos = 0;
      }
      const step = Math.min(size, this.buffer.length - this.pos);
      yield this.buffer.subarray(this.pos, this.pos + step);
      this.pos += step;
      size -= step;
    }
  }

  async read(size) {
    const parts = [];
    for await (const piece of this.pieces(size)) parts.push(piece.slice());
    return concat(...parts);
  }

  async atEnd() {
    return this.pos === this.buffer.length && (await this.chunks.next()).done;
  }
}

// Open an envelope read from `reader` (a StreamReader) with any of the X25519 secret keys in
// `identities`, holding one chunk at a time. Attachment bytes go, piece by piece, to the
// function `sink(index, attachment)` returns (an async function taking a Uint8Array that is
// valid only during the call), or are checked and dropped when it returns null. They are
// unverified until this returns: on any error the caller MUST discard everything the sink got
// (§4.7). Returns the inner manifest; throws as openEnvelope does.
export async function openEnvelopeStream(reader, identities, sink = null) {
  const prefix = await reader.read(PREAMBLE.length + 1);
  const count = checkPreamble(prefix);
  const headerBytes = concat(prefix, await reader.read(headerSize(count) - prefix.length));
  const { header, fileKey } = unwrap(headerBytes, identities);
  const { payloadKey } = fileKeys(fileKey);
  sodium.memzero(fileKey);
  const plain = new StreamPlaintext(streamChunks(reader, payloadKey, header.ssHeader));
  const size = new DataView((await plain.read(4)).buffer).getUint32(0);
  if (size < 1 || size > MAX_INNER_MANIFEST) {
    throw new EnvelopeContentError(`the inner manifest length must be 1 to ${MAX_INNER_MANIFEST}`);
  }
  const inner = parseInner(await plain.read(size));
  const length = 4 + size + inner.attachments.reduce((n, a) => n + a.size, 0);
  if (length > MAX_PLAINTEXT) {
    throw new EnvelopeContentError("the attachments are larger than the format allows");
  }
  for (let i = 0; i < inner.attachments.length; i++) {
    const target = sink ? await sink(i, inner.attachments[i]) : null;
    for await (const piece of plain.pieces(inner.attachments[i].size)) {
      if (target) await target(piece);
    }
  }
  for await (const piece of plain.pieces(paddedLength(length) - length)) {
    if (!sodium.is_zero(piece)) throw new EnvelopeContentError("the padding is not zero");
  }
  if (!(await plain.atEnd())) {
    throw new EnvelopeContentError("the plaintext is longer than its padded length");
  }
  return inner;
}
