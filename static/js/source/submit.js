// The submit page. The Send button is disabled in the HTML until this script has decided which
// path the page takes, and said so: with WebAssembly, make the codename, seal in the Worker
// while the sealed chunks upload (resumable), then show the codename; without, say that the
// server will lock the tip and only then let the plain form be sent. Nothing leaves in the
// clear before the source has been told.
import {
  alarm, api, clearAlarm, CryptoWorker, formatBytes, guardPage, release, say, startCrypto, strings,
} from "./common.js";
import { Upload, UploadError } from "./upload.js";

const t = strings();
const form = document.getElementById("submit-form");
// Past this much, a plain form post (no progress, no resume) deserves a word before it starts.
const BIG = 20 * 1000 * 1000;

async function main() {
  if (!form) return;
  const { crypto, manifestVersion, reason } = await startCrypto(
    form.dataset.orgPublicKey, form.dataset.manifest);
  if (!crypto) {
    fallBack(reason === "no-wasm" ? t("noWasm") : t("noCrypto"), reason !== "no-wasm");
    return;
  }
  if (String(manifestVersion) !== form.dataset.manifestVersion) {
    alarm(t("badKeys")); // the page and the manifest disagree: reload, never guess
    document.getElementById("path-notice").hidden = true;
    return; // the button stays disabled
  }
  // A logged-in source's envelope must carry the reply key made from their codename, which
  // this page knows only if the server names it; without it the server seals (it knows the key).
  if (form.dataset.loggedIn === "yes" && !form.dataset.replyPublicKey) {
    crypto.terminate();
    fallBack(t("noCrypto"));
    return;
  }
  form.dataset.sealing = "browser";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send(crypto, manifestVersion).catch(() => alarm(t("failed")));
  });
  say(t("browserPath"));
  release(form);
}

// The plain form, posted to the server, which locks the tip on arrival: said first, then
// allowed. Large files get a word about what this path cannot do. When an admin has made the
// form ask for the proof-of-work too (data-pow-form), it is solved before the form leaves,
// which needs WebAssembly: without it the page says so (#pow-form-notice) and stays closed.
function fallBack(message, wasm = true) {
  if (form.dataset.powForm === "yes" && !wasm) {
    say(document.getElementById("pow-form-notice")?.textContent || message);
    return; // the button stays disabled
  }
  say(message);
  form.dataset.sealing = "server";
  const files = form.querySelector("#files");
  const note = document.getElementById("big-files");
  files.addEventListener("change", () => {
    const total = Array.from(files.files).reduce((sum, f) => sum + f.size, 0);
    note.textContent = t("bigFiles");
    note.hidden = total < BIG;
  });
  form.addEventListener("submit", (event) => {
    const total = Array.from(files.files).reduce((sum, f) => sum + f.size, 0);
    if (total > Number(form.dataset.maxSize)) {
      event.preventDefault(); // refused here, so the message stays where it is
      alarm(t("tooBig", { max: formatBytes(Number(form.dataset.maxSize)) }));
    }
  });
  if (form.dataset.powForm === "yes") solveBeforeSending();
  release(form);
}

// The form's proof-of-work: on the first Send, fetch a challenge, solve it in a Worker of its
// own, put the answer in the hidden fields, then send the form for real.
function solveBeforeSending() {
  let solved = false;
  form.addEventListener("submit", async (event) => {
    if (solved || event.defaultPrevented) return;
    event.preventDefault();
    say(t("checking"));
    const worker = new CryptoWorker();
    try {
      const asked = await api("GET", "/api/source/pow");
      if (!asked.ok) throw new Error("no challenge");
      if (asked.data.pow) {
        const answer = await worker.call("pow", {
          challenge: asked.data.challenge, difficulty: asked.data.difficulty,
        });
        document.getElementById("pow-challenge").value = asked.data.challenge;
        document.getElementById("pow-nonce").value = answer.nonce;
      }
      solved = true;
      form.requestSubmit();
    } catch {
      alarm(t("failed"));
    } finally {
      worker.terminate();
    }
  });
}

async function send(crypto, manifestVersion) {
  const message = form.querySelector("#message").value;
  const files = Array.from(form.querySelector("#files").files);
  if (!message.trim() && files.length === 0) { alarm(t("empty")); return; }
  const total = files.reduce((sum, f) => sum + f.size, 0);
  if (total > Number(form.dataset.maxSize)) {
    alarm(t("tooBig", { max: formatBytes(Number(form.dataset.maxSize)) }));
    return;
  }

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
  const back = () => {
    box.hidden = true;
    form.hidden = false;
    guardPage(false);
  };
  document.getElementById("cancel").onclick = async () => {
    controller.abort();
    dropSeal();
    await upload?.cancel();
    back();
    say(t("cancelled"));
  };
  form.hidden = true;
  box.hidden = false;
  guardPage(true);
  clearAlarm();
  text.textContent = t("sealing");

  let codename = null;
  let newSource = null;
  let replyPublicKey = form.dataset.replyPublicKey;
  if (form.dataset.loggedIn !== "yes") {
    // A new codename for every first attempt: the source is stored only when this upload
    // finishes, so one that fails leaves nothing and the next attempt starts afresh.
    const made = await crypto.call("codename");
    codename = made.codename;
    replyPublicKey = made.replyPublicKey;
    newSource = { loginToken: made.loginToken, replyPublicKey: made.replyPublicKey };
  }
  // When the server asks for a proof-of-work (docs/SPEC.md §10), the Worker solves it first;
  // when it does not, nothing more is sent or done than before.
  let proof = null;
  if (form.dataset.pow === "yes") {
    text.textContent = t("checking");
    try {
      const asked = await api("GET", "/api/source/pow", undefined, { signal: controller.signal });
      if (!asked.ok) throw new UploadError(asked.status, asked.data?.error);
      if (asked.data.pow) {
        const solved = await crypto.call("pow", {
          challenge: asked.data.challenge, difficulty: asked.data.difficulty,
        });
        proof = { challenge: asked.data.challenge, nonce: solved.nonce };
        box.dataset.powMs = String(solved.ms); // how long the browser took (tests, benchmarks)
      }
    } catch (error) {
      if (controller.signal.aborted) return;
      back();
      alarm(error instanceof UploadError && error.message ? error.message : t("failed"));
      return;
    }
    if (controller.signal.aborted) return;
    text.textContent = t("sealing");
  }
  // Sealing and sending are one stream: the Worker seals a chunk when the upload asks for it,
  // so neither side ever holds the whole envelope (docs/BROWSER.md).
  const started = await crypto.call("sealStart", { message, files, replyPublicKey });
  stream = started.stream;
  const spare = [];
  upload = new Upload({
    header: started.header, size: started.size, manifestVersion, newSource, proof,
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
    back();
    alarm(error instanceof UploadError && error.message ? error.message : t("failed"));
    return;
  }
  guardPage(false);
  box.hidden = true;
  const done = document.getElementById("done");
  if (codename) {
    document.getElementById("codename").textContent = codename;
    document.getElementById("codename-box").hidden = false;
    // Nothing on this view may lead away from the only copy of the codename.
    document.getElementById("languages")?.setAttribute("hidden", "");
  } else {
    document.getElementById("done-actions").hidden = false;
  }
  document.getElementById("path-notice").hidden = true;
  done.hidden = false;
  done.focus();
}

main();
