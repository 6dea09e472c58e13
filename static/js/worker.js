// The crypto Worker: all sealing, opening and codename work of the source pages happens here,
// off the page's thread (docs/BROWSER.md). The client is CryptoWorker in source/common.js.
//
// Protocol: requests {id, op, ...}; replies {id, ok: true, ...} or {id, ok: false, error, kind};
// progress {id, progress: true, done, total}. Ops:
//   init {orgPublicKey (b64), manifest (text)}       -> {version}
//   codename                                          -> {codename, loginToken, replyPublicKey}
//   derive {codename}                                 -> {loginToken, replySecretKey}
//   seal {message, files: Blob[], replyPublicKey}     -> {envelope: Blob, header: Uint8Array}
//   open {envelope: ArrayBuffer, replySecretKey}      -> {message, kind}
// loginToken and replyPublicKey are standard base64, as /api/source/register and /login take
// them; replySecretKey is a Uint8Array that only ever goes back to this Worker.
//
// Error messages are the crypto core's own, written for people; they never hold a codename,
// a key or plaintext. Anything unexpected is reported as a plain failure without its details.

const state = { core: null, recipients: null, version: null, wordlist: null };
// Ciphertext is gathered into Blobs of this many bytes, so a browser can page a large envelope
// out of memory (Chromium keeps big Blobs on disk) instead of holding many small arrays.
const BLOB_GROUP = 8 << 20;
// Replies are opened whole, in memory: a source reads text here, not large files. Bounded before
// anything is parsed, like every input from outside.
const MAX_OPEN = 64 << 20;

async function core() {
  // Loaded on first use, inside a request, so a missing or blocked WebAssembly becomes an
  // error reply to `init` (and the page falls back to the server-side path), not a dead Worker.
  if (!state.core) {
    const [encoding, envelope, manifest, codename] = await Promise.all([
      import("./encoding.js"), import("./envelope.js"), import("./manifest.js"), import("./codename.js"),
    ]);
    state.core = { encoding, envelope, manifest, codename };
  }
  return state.core;
}

async function wordlist() {
  if (!state.wordlist) {
    const { encoding, codename } = await core();
    const response = await fetch(new URL("../build/eff-long.txt", import.meta.url), { cache: "no-store" });
    if (!response.ok) throw new encoding.WordlistError("it could not be loaded");
    state.wordlist = codename.loadWordlist(await response.text());
  }
  return state.wordlist;
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

  async seal({ message, files = [], replyPublicKey }, progress) {
    requireInit();
    const { encoding, envelope } = await core();
    if (typeof replyPublicKey !== "string") {
      throw new encoding.EnvelopeContentError("a submission needs the source's reply key");
    }
    const inner = {
      kind: "submission",
      sealedBy: "browser",
      message: typeof message === "string" ? message : "",
      replyPublicKey: encoding.b64d(replyPublicKey, 32, encoding.EnvelopeContentError, "reply key"),
      attachments: files.map((f) => ({ name: displayName(f.name), size: f.size, type: mimeType(f.type) })),
    };
    const parts = [];
    let group = [];
    let groupSize = 0;
    let header = null;
    for await (const piece of envelope.seal(state.recipients, inner, files, progress)) {
      if (header === null) header = piece;
      group.push(piece);
      groupSize += piece.length;
      if (groupSize >= BLOB_GROUP) {
        parts.push(new Blob(group));
        group = [];
        groupSize = 0;
      }
    }
    parts.push(new Blob(group));
    return { envelope: new Blob(parts, { type: "application/octet-stream" }), header };
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
    let last = 0;
    const progress = (done, total) => {
      // At most about a hundred progress messages per seal.
      if ((done === total && last !== total) || done - last >= total / 100) {
        last = done;
        self.postMessage({ id, progress: true, done, total });
      }
    };
    const result = await run(args, progress);
    self.postMessage({ id, ok: true, ...result });
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
