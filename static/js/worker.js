// The crypto Worker: all sealing, opening and codename work of the source pages happens here,
// off the page's thread (docs/BROWSER.md). The client is CryptoWorker in source/common.js.
//
// Protocol: requests {id, op, ...}; replies {id, ok: true, ...} or {id, ok: false, error, kind}.
// Sealing is pulled piece by piece (sealNext), each answer carrying the plaintext progress. Ops:
//   init {orgPublicKey (b64), manifest (text)}       -> {version}
//   codename                                          -> {codename, loginToken, replyPublicKey}
//   derive {codename}                                 -> {loginToken, replySecretKey}
//   sealStart {message, files: Blob[], replyPublicKey} -> {stream, header: Uint8Array, size}
//   sealNext {stream, max, buffer?}                   -> {data: ArrayBuffer (transferred), length,
//                                                        end, done, total}
//   sealCancel {stream}                               -> {}
//   pow {challenge (b64), difficulty}                 -> {nonce (b64), ms}
//   open {envelope: ArrayBuffer, replySecretKey}      -> {message, kind}
//   openReply {url, replySecretKey, maxSize}          -> {message, kind, attachments:
//                                                        [{name, size, blob}], peakHeld}
// loginToken and replyPublicKey are standard base64, as /api/source/uploads and /login take
// them; replySecretKey is a Uint8Array that only ever goes back to this Worker.
//
// Error messages are the crypto core's own, written for people; they never hold a codename,
// a key or plaintext. Anything unexpected is reported as a plain failure without its details.

const state = {
  core: null, recipients: null, version: null, wordlist: null, streams: new Map(), nextStream: 1,
};
// A sealed piece is at most the server's largest chunk (MAX_CHUNK_SIZE's default); a page
// keeps at most a few seals open.
const MAX_PIECE = 8 << 20;
const MAX_STREAMS = 4;
// `open` takes a whole envelope in memory (tests, small things). Replies are opened with
// `openReply`, streamed from the server, to any size the server accepts.
const MAX_OPEN = 64 << 20;
// An attachment's plaintext leaves the Worker's memory for a Blob every this many bytes: the
// browser keeps Blobs outside the script's heap, so the Worker holds one chunk of ciphertext
// and at most this much plaintext whatever the reply's size.
const BLOB_PART = 1 << 20;
const REPLY_URL = /^\/api\/source\/replies\/[0-9a-f]{32}$/;

async function core() {
  // Loaded on first use, inside a request, so a missing or blocked WebAssembly becomes an
  // error reply to `init` (and the page falls back to the server-side path), not a dead Worker.
  if (!state.core) {
    const [encoding, envelope, manifest, codename, padding] = await Promise.all([
      import("./encoding.js"), import("./envelope.js"), import("./manifest.js"), import("./codename.js"),
      import("./padding.js"),
    ]);
    state.core = { encoding, envelope, manifest, codename, padding };
  }
  return state.core;
}

async function wordlist() {
  if (!state.wordlist) {
    const { encoding, codename } = await core();
    // A content-addressed file (its name changes with it): the browser may keep it.
    const response = await fetch(new URL("../build/eff-long.txt", import.meta.url));
    if (!response.ok) throw new encoding.WordlistError("it could not be loaded");
    state.wordlist = codename.loadWordlist(await response.text());
  }
  return state.wordlist;
}

function forget(id) {
  const stream = state.streams.get(id);
  state.streams.delete(id);
  stream?.iterator.return?.().catch(() => {});
}

function requireInit() {
  if (!state.recipients) throw new Error("the key manifest has not been verified");
}

const OPS = {
  async init({ orgPublicKey, manifest }) {
    // A refused manifest leaves nothing to seal to, even if an earlier one was accepted.
    state.recipients = null;
    state.version = null;
    const { encoding, manifest: m } = await core();
    const org = encoding.b64d(orgPublicKey, 32, encoding.ManifestError, "the org public key");
    if (typeof manifest !== "string") throw new encoding.ManifestError("the manifest must be text");
    const verified = m.verifyManifest(manifest, org);
    await wordlist(); // fail now, not when the source presses Send
    state.recipients = verified.recipients.map((r) => r.publicKey);
    state.version = verified.version;
    return { version: verified.version };
  },

  async codename() {
    const { encoding, codename } = await core();
    const made = codename.generate(await wordlist());
    const derived = codename.derive(made);
    return {
      codename: made,
      loginToken: encoding.b64e(derived.loginToken),
      replyPublicKey: encoding.b64e(derived.replyPublicKey),
    };
  },

  async derive({ codename: typed }) {
    const { encoding, codename } = await core();
    const derived = codename.derive(codename.normalize(await wordlist(), typed));
    return { loginToken: encoding.b64e(derived.loginToken), replySecretKey: derived.replySecretKey };
  },

  // Start sealing a submission. Answers with the header and the envelope's exact size before
  // any payload is made, so the page can create the upload (and hear of a key rotation) first;
  // the rest is pulled with sealNext, piece by piece.
  async sealStart({ message, files = [], replyPublicKey }) {
    requireInit();
    const { encoding, envelope, padding } = await core();
    if (typeof replyPublicKey !== "string") {
      throw new encoding.EnvelopeContentError("a submission needs the source's reply key");
    }
    if (!Array.isArray(files) || !files.every((f) => f instanceof Blob)) {
      throw new TypeError("files must be Blobs");
    }
    if (state.streams.size >= MAX_STREAMS) throw new Error("too many seals at once");
    const inner = {
      kind: "submission",
      sealedBy: "browser",
      message: typeof message === "string" ? message : "",
      replyPublicKey: encoding.b64d(replyPublicKey, 32, encoding.EnvelopeContentError, "reply key"),
      attachments: files.map((f) => ({ name: displayName(f.name), size: f.size, type: mimeType(f.type) })),
    };
    const manifestSize = envelope.encodeInner(inner).length;
    const length = 4 + manifestSize + inner.attachments.reduce((n, a) => n + a.size, 0);
    const stream = {
      iterator: null, leftover: null, produced: 0, size: 0, done: 0, total: length, busy: false,
    };
    stream.iterator = envelope.seal(state.recipients, inner, files, (done, total) => {
      stream.done = done;
      stream.total = total;
    });
    const first = await stream.iterator.next();
    const header = first.value;
    stream.size = envelope.ciphertextSize(padding.paddedLength(length), state.recipients.length);
    stream.produced = header.length;
    const id = state.nextStream++;
    state.streams.set(id, stream);
    return { stream: id, header, size: stream.size };
  },

  // The next `max` bytes of the envelope after those already handed out (fewer only at its
  // end), as one transferred ArrayBuffer. Nothing is made before it is asked for: the Worker
  // holds at most one piece and one ciphertext chunk, whatever the file's size.
  async sealNext({ stream: id, max, buffer = null }) {
    const stream = state.streams.get(id);
    if (!stream) throw new Error("no such seal");
    if (stream.busy) throw new Error("one piece at a time");
    if (!Number.isSafeInteger(max) || max < 1 || max > MAX_PIECE) {
      throw new RangeError(`a piece is 1 to ${MAX_PIECE} bytes`);
    }
    stream.busy = true;
    try {
      // A buffer the page hands back (transferred) is filled again: no new memory per piece,
      // so neither side waits for garbage collection to give it back.
      const length = Math.min(max, stream.size - stream.produced);
      const out = buffer instanceof ArrayBuffer && buffer.byteLength >= length
        ? new Uint8Array(buffer, 0, length) : new Uint8Array(length);
      let filled = 0;
      while (filled < out.length) {
        if (!stream.leftover || stream.leftover.length === 0) {
          const next = await stream.iterator.next();
          if (next.done) throw new Error("the envelope ended before its announced size");
          stream.leftover = next.value;
        }
        const step = Math.min(out.length - filled, stream.leftover.length);
        out.set(stream.leftover.subarray(0, step), filled);
        stream.leftover = stream.leftover.subarray(step);
        filled += step;
      }
      stream.produced += out.length;
      const end = stream.produced === stream.size;
      if (end) {
        // Run the generator to its end: it checks the plaintext and reports the last progress.
        if (!(await stream.iterator.next()).done || stream.leftover.length) {
          throw new Error("the envelope is longer than its announced size");
        }
        state.streams.delete(id);
      }
      return {
        data: out.buffer, length, end, done: stream.done, total: stream.total, transfer: [out.buffer],
      };
    } catch (error) {
      forget(id);
      throw error;
    } finally {
      stream.busy = false;
    }
  },

  // Solve the server's proof-of-work challenge before an upload starts (docs/SPEC.md §10).
  async pow({ challenge, difficulty }) {
    const { encoding } = await core();
    const { solve, CHALLENGE_SIZE, PowError } = await import("./pow.js");
    const bytes = encoding.b64d(challenge, CHALLENGE_SIZE, PowError, "the challenge");
    const started = Date.now();
    const nonce = solve(bytes, difficulty);
    return { nonce: encoding.b64e(nonce), ms: Date.now() - started };
  },

  // The page cancelled or gave up: drop the seal and what it holds.
  async sealCancel({ stream: id }) {
    forget(id);
    return {};
  },

  async open({ envelope: data, replySecretKey }) {
    const { encoding, envelope } = await core();
    if (!(data instanceof ArrayBuffer) || !(replySecretKey instanceof Uint8Array)) {
      throw new TypeError("open takes an ArrayBuffer and a Uint8Array");
    }
    if (data.byteLength > MAX_OPEN) {
      throw new encoding.EnvelopeFormatError(`it is larger than the ${MAX_OPEN >> 20} MiB a browser opens`);
    }
    const { inner } = envelope.openEnvelope(new Uint8Array(data), [replySecretKey]);
    return { message: inner.message, kind: inner.kind };
  },

  // Download a reply and open it as it arrives, a chunk at a time; each attachment becomes a
  // Blob for the page to offer as a download, handed over only once the whole reply has
  // authenticated (SPEC §4.7). `maxSize` is the largest reply the server accepts from the desk
  // (the page's data-max-reply): one limit for both.
  async openReply({ url, replySecretKey, maxSize }) {
    const { encoding, envelope } = await core();
    if (typeof url !== "string" || !REPLY_URL.test(url)) throw new TypeError("not a reply's address");
    if (!(replySecretKey instanceof Uint8Array)) throw new TypeError("the reply key is bytes");
    if (!Number.isSafeInteger(maxSize) || maxSize < 1) throw new RangeError("a size limit is needed");
    const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok || !response.body) throw new Error("the reply could not be downloaded");
    if (Number(response.headers.get("Content-Length") || 0) > maxSize) {
      await response.body.cancel();
      throw new encoding.TooLargeError(`it is over ${maxSize} bytes`);
    }
    const body = response.body.getReader();
    let received = 0;
    const reader = new envelope.StreamReader(async () => {
      const { done, value } = await body.read();
      if (done) return null;
      received += value.length;
      if (received > maxSize) throw new encoding.TooLargeError(`it is over ${maxSize} bytes`);
      return value;
    });
    const files = [];
    let held = 0;
    let peakHeld = 0;
    try {
      const inner = await envelope.openEnvelopeStream(reader, [replySecretKey], async (_i, a) => {
        const file = { name: a.name, size: a.size, blobs: [], pending: [], pendingSize: 0 };
        files.push(file);
        return async (piece) => {
          file.pending.push(piece.slice()); // the chunk's buffer is reused: keep a copy
          file.pendingSize += piece.length;
          held += piece.length;
          peakHeld = Math.max(peakHeld, held);
          if (file.pendingSize >= BLOB_PART) {
            file.blobs.push(new Blob(file.pending));
            held -= file.pendingSize;
            file.pending = [];
            file.pendingSize = 0;
          }
        };
      });
      if (inner.kind !== "reply") throw new encoding.EnvelopeContentError("it is not a reply");
      const attachments = files.map((f) => ({
        name: f.name, size: f.size,
        blob: new Blob([...f.blobs, ...f.pending], { type: "application/octet-stream" }),
      }));
      return { message: inner.message, kind: inner.kind, attachments, peakHeld };
    } finally {
      body.cancel().catch(() => {});
    }
  },
};

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

// A file's name as a display name of 1 to 255 UTF-8 bytes (never a path, SPEC §4.4): cut at a
// character boundary, keeping the extension when it is short.
export function displayName(name) {
  const text = typeof name === "string" ? name.replace(LONE_SURROGATE, "\uFFFD") : "";
  if (!text) return "attachment";
  const bytes = (s) => new TextEncoder().encode(s).length;
  if (bytes(text) <= 255) return text;
  const dot = text.lastIndexOf(".");
  const ext = dot > 0 && text.length - dot <= 16 ? text.slice(dot) : "";
  let stem = [...text.slice(0, text.length - ext.length)];
  while (bytes(stem.join("") + ext) > 255) stem.pop();
  return stem.join("") + ext;
}

// The browser's claimed MIME type when the format can carry it (SPEC §4.4), otherwise none.
export function mimeType(type) {
  return typeof type === "string" && type.length <= 127 && /^[\x20-\x7e]*$/.test(type) ? type : "";
}

async function handle({ id, op, ...args }) {
  const run = Object.hasOwn(OPS, op) ? OPS[op] : null;
  try {
    if (!run) throw new Error(`unknown op ${String(op).slice(0, 32)}`);
    const { transfer = [], ...result } = await run(args);
    self.postMessage({ id, ok: true, ...result }, transfer);
  } catch (error) {
    const known = state.core && error instanceof state.core.encoding.TiplineError;
    self.postMessage({
      id,
      ok: false,
      kind: known ? error.kind : "failed",
      error: known ? error.message : "the browser could not do this encryption step",
      name: error?.name ?? "Error", // for diagnosis; a class name carries no data
    });
  }
}

if (typeof WorkerGlobalScope !== "undefined" && self instanceof WorkerGlobalScope) {
  self.onmessage = (event) => { handle(event.data); };
}
