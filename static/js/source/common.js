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

// The page's status line (#path-notice, a polite live region): which path the page takes.
// Errors go to #page-error (role=alert), so a screen reader says them at once.
export function say(text, isError = false) {
  if (isError) { alarm(text); return; }
  const notice = document.getElementById("path-notice");
  if (!notice) return;
  notice.textContent = text;
  notice.hidden = false;
}

// A new attempt: the last one's error goes.
export function clearAlarm() {
  const error = document.getElementById("page-error");
  if (error) error.hidden = true;
}

export function alarm(text) {
  const error = document.getElementById("page-error");
  error.textContent = text;
  error.hidden = false;
}

// The page's submit button stays disabled (in the HTML, before any script runs) until the page
// has decided, and said, which path it takes: a press of Send or Enter before then does nothing,
// so neither a codename nor a message can leave in the clear by accident.
export function release(form) {
  const button = form.querySelector("#send");
  if (button) button.disabled = false;
  form.dataset.ready = "yes";
}

export function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]').content;
}

// A new session (after logging in) has a new token: the meta tag and every form's hidden
// field take it, so the page's own forms (log out, delete) keep working.
export function setCsrfToken(token) {
  document.querySelector('meta[name="csrf-token"]').content = token;
  for (const field of document.querySelectorAll('input[name="csrf_token"]')) field.value = token;
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

// Start the worker and have it verify the signed manifest (in the page, or fetched) against
// the org key in the page.
export async function startCrypto(orgPublicKey, manifestText = "") {
  if (!(await wasmWorks())) return { crypto: null, reason: "no-wasm" };
  let crypto;
  try {
    crypto = new CryptoWorker();
    let manifest = manifestText;
    if (!manifest) {
      const manifestResponse = await fetch("/api/source/manifest", { cache: "no-store" });
      if (!manifestResponse.ok) throw new Error("no manifest");
      manifest = await manifestResponse.text();
    }
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

// A size in the units people know (decimal, as file managers show them), in the page's
// language: the unit names come translated in #strings (data-units), as the server writes them.
export function formatBytes(n) {
  const el = document.getElementById("strings");
  const units = (el?.dataset.units || "bytes|KB|MB|GB").split("|");
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  const number = new Intl.NumberFormat(document.documentElement.lang || "en",
    { maximumFractionDigits: i ? 1 : 0 }).format(n);
  return `${number}\u00a0${units[i]}`;
}

// While something is being sent, nothing on the page may lead away from it (the language
// links would reload the page and abandon the upload); a reload or a closed tab asks first.
let guarding = 0;
function askBeforeLeaving(event) { event.preventDefault(); event.returnValue = ""; }
export function guardPage(on) {
  guarding += on ? 1 : -1;
  const nav = document.getElementById("languages");
  if (nav) nav.hidden = guarding > 0;
  if (on && guarding === 1) window.addEventListener("beforeunload", askBeforeLeaving);
  if (!on && guarding === 0) window.removeEventListener("beforeunload", askBeforeLeaving);
}

// The codename field's "show the words" switch.
export function showToggle() {
  const box = document.getElementById("show-codename");
  const input = document.getElementById("codename-input");
  if (!box || !input) return;
  box.addEventListener("change", () => { input.type = box.checked ? "text" : "password"; });
}

// Logging in starts a new session with a new CSRF token: read it from a fresh page.
export async function refreshCsrf() {
  const page = await fetch("/submit", { credentials: "same-origin", cache: "no-store" });
  const token = /name="csrf-token" content="([^"]+)"/.exec(await page.text());
  if (token) setCsrfToken(token[1]);
}
