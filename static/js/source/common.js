// Shared by the source page controllers: translated strings, the status line, the CSRF header,
// the WebAssembly probe, and the crypto Worker client. Nothing here is loaded from anywhere but
// this server.

export function strings() {
  const el = document.getElementById("strings");
  return (key, values = {}) => {
    let text = el ? el.dataset[key] || key : key;
    for (const [name, value] of Object.entries(values)) text = text.replace(`{${name}}`, value);
    return text;
  };
}

// The page's status line (#path-notice): which path the page takes, and what went wrong.
export function say(text, isError = false) {
  const notice = document.getElementById("path-notice");
  notice.textContent = text;
  notice.className = isError ? "error" : "notice";
  notice.hidden = false;
}

export function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]').content;
}

export async function api(method, path, body, extra = {}) {
  const headers = { "X-CSRFToken": csrfToken(), ...extra.headers };
  let payload = body;
  if (body !== undefined && !(body instanceof Blob) && !(body instanceof ArrayBuffer) &&
      !ArrayBuffer.isView(body)) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(path, {
    method, headers, body: payload, credentials: "same-origin", cache: "no-store",
    signal: extra.signal,
  });
  let data = null;
  if ((response.headers.get("Content-Type") || "").startsWith("application/json")) {
    data = await response.json();
  }
  return { status: response.status, ok: response.ok, data, response };
}

// Tor Browser's "Safer" level turns WebAssembly off (and JIT); then the page must not try to
// seal, because libsodium.js's JavaScript fallback is slow and, for Argon2, wrong.
export async function wasmWorks() {
  try {
    if (typeof WebAssembly !== "object") return false;
    // The smallest valid module: magic and version.
    const module = new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
    await WebAssembly.instantiate(module);
    return true;
  } catch {
    return false;
  }
}

// The crypto Worker (static/js/worker.js) does all sealing and opening; the page only moves
// bytes. Requests are {id, op, ...}; replies {id, ok, ...} or {id, ok: false, error}.
export class CryptoWorker {
  constructor() {
    this.worker = new Worker(new URL("../worker.js", import.meta.url), { type: "module" });
    this.next = 1;
    this.pending = new Map();
    this.worker.onmessage = (event) => {
      const msg = event.data;
      const entry = this.pending.get(msg.id);
      if (!entry) return;
      this.pending.delete(msg.id);
      if (msg.ok) { entry.resolve(msg); return; }
      // kind: the crypto core's error kind (format_error, open_error, codename_error, ...) or
      // "failed"; name: the class of an unexpected error. Neither carries any data.
      entry.reject(Object.assign(new Error(msg.error || "worker error"),
        { kind: msg.kind, errorName: msg.name }));
    };
    // The error can come before the first call (a script that failed to load): remember it.
    this.failed = null;
    this.worker.onerror = (event) => {
      this.failed = new Error(event.message || "the crypto worker failed");
      for (const entry of this.pending.values()) entry.reject(this.failed);
      this.pending.clear();
    };
  }

  call(op, args = {}, transfer = []) {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      if (this.failed) { reject(this.failed); return; }
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, ...args }, transfer);
    });
  }

  terminate() { this.worker.terminate(); }
}

// Start the worker and have it verify the signed manifest against the org key in the page.
export async function startCrypto(orgPublicKey) {
  if (!(await wasmWorks())) return { crypto: null, reason: "no-wasm" };
  let crypto;
  try {
    crypto = new CryptoWorker();
    const manifestResponse = await fetch("/api/source/manifest", { cache: "no-store" });
    if (!manifestResponse.ok) throw new Error("no manifest");
    const manifest = await manifestResponse.text();
    // A worker that never answers must not leave the page waiting: the form still works.
    const timeout = new Promise((_, reject) =>
      setTimeout(() => reject(new Error("the crypto worker did not start")), 20000));
    const verified = await Promise.race([crypto.call("init", { orgPublicKey, manifest }), timeout]);
    return { crypto, manifestVersion: verified.version, reason: null };
  } catch (error) {
    crypto?.terminate();
    return { crypto: null, reason: "unavailable", error };
  }
}

export function formatBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// Logging in starts a new session with a new CSRF token: read it from a fresh page.
export async function refreshCsrf() {
  const page = await fetch("/submit", { credentials: "same-origin", cache: "no-store" });
  const token = /name="csrf-token" content="([^"]+)"/.exec(await page.text());
  if (token) document.querySelector('meta[name="csrf-token"]').content = token[1];
}
