// The submit page. With WebAssembly: make the codename, seal in the Worker while the sealed
// chunks upload (resumable), show the codename. Without: say so and leave the plain form, which
// the server seals on arrival. The page never sends plaintext when it seals itself.
import { api, formatBytes, refreshCsrf, say, startCrypto, strings } from "./common.js";
import { Upload, UploadError } from "./upload.js";

const t = strings();
const form = document.getElementById("submit-form");

async function main() {
  if (!form) return;
  const { crypto, manifestVersion, reason } = await startCrypto(form.dataset.orgPublicKey);
  if (!crypto) {
    say(reason === "no-wasm" ? t("noWasm") : t("noCrypto"));
    return; // the form posts to the server as it is
  }
  if (String(manifestVersion) !== form.dataset.manifestVersion) {
    say(t("badKeys"), true); // the page and the manifest disagree: reload, never guess
    form.querySelector("button[type=submit]").disabled = true;
    return;
  }
  // A logged-in source's envelope must carry the reply key made from their codename, which
  // this page knows only if the server names it; without it the server seals (it knows the key).
  if (form.dataset.loggedIn === "yes" && !form.dataset.replyPublicKey) {
    say(t("noCrypto"));
    return;
  }
  say(t("browserPath"));
  form.dataset.sealing = "browser";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send(crypto, manifestVersion).catch(() => say(t("failed"), true));
  });
}

async function send(crypto, manifestVersion) {
  const message = form.querySelector("#message").value;
  const files = Array.from(form.querySelector("#files").files);
  if (!message.trim() && files.length === 0) { say(t("empty"), true); return; }
  const total = files.reduce((sum, f) => sum + f.size, 0);
  if (total > Number(form.dataset.maxSize)) { say(t("tooBig"), true); return; }

  const box = document.getElementById("progress-box");
  const bar = document.getElementById("progress");
  const text = document.getElementById("progress-text");
  const controller = new AbortController();
  let upload = null;
  let stream = null;
  const dropSeal = () => {
    if (stream !== null) crypto.call("sealCancel", { stream }).catch(() => null);
    stream = null;
  };
  document.getElementById("cancel").onclick = async () => {
    controller.abort();
    dropSeal();
    await upload?.cancel();
    box.hidden = true;
    form.hidden = false;
    say(t("cancelled"));
  };
  form.hidden = true;
  box.hidden = false;
  text.textContent = t("sealing");

  let codename = null;
  let replyPublicKey = form.dataset.replyPublicKey;
  if (form.dataset.loggedIn !== "yes") {
    const made = await crypto.call("codename");
    codename = made.codename;
    replyPublicKey = made.replyPublicKey;
    const registered = await api("POST", "/api/source/register", {
      login_token: made.loginToken, reply_public_key: made.replyPublicKey,
    });
    if (!registered.ok) throw new UploadError(registered.status, registered.data?.error);
    await refreshCsrf();
  }
  // Sealing and sending are one stream: the Worker seals a chunk when the upload asks for it,
  // so neither side ever holds the whole envelope (docs/BROWSER.md).
  const started = await crypto.call("sealStart", { message, files, replyPublicKey });
  stream = started.stream;
  const spare = [];
  upload = new Upload({
    header: started.header, size: started.size, manifestVersion,
    // Acknowledged pieces' buffers go back to the Worker to be filled again (transferred).
    pull: async (max) => {
      const buffer = spare.pop();
      const piece = await crypto.call("sealNext", { stream, max, buffer }, buffer ? [buffer] : []);
      if (piece.end) stream = null;
      return new Uint8Array(piece.data, 0, piece.length);
    },
    recycle: (bytes) => { if (spare.length < 2) spare.push(bytes.buffer); },
    chunkSize: Number(form.dataset.chunkSize), signal: controller.signal,
    onProgress: (done, size, resuming) => {
      bar.value = (100 * done) / size;
      box.dataset.peakHeld = String(upload.peakHeld); // bytes of ciphertext the page held at once
      text.textContent = resuming ? t("resuming")
        : t("sending", { done: formatBytes(done), total: formatBytes(size) });
    },
  });
  try {
    await upload.run();
  } catch (error) {
    dropSeal();
    if (controller.signal.aborted) return; // cancelled: the cancel button has said so
    box.hidden = true;
    form.hidden = false;
    say(error instanceof UploadError && error.message ? error.message : t("failed"), true);
    return;
  }
  box.hidden = true;
  const done = document.getElementById("done");
  if (codename) {
    document.getElementById("codename").textContent = codename;
    document.getElementById("codename-box").hidden = false;
    // Nothing on this view may lead away from the only copy of the codename.
    document.querySelector("header nav")?.setAttribute("hidden", "");
  }
  document.getElementById("path-notice").hidden = true;
  done.hidden = false;
  done.focus();
}

main();
