// Drives the real crypto Worker through the real client (static/js/source/common.js) for
// tests/browser/test_worker.py. Only moves bytes in and out as base64 for the test to check.
import { CryptoWorker, wasmWorks } from "/static/js/source/common.js";

const violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  violations.push(`${event.effectiveDirective} ${event.blockedURI}`);
});

function toBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function fromBase64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

let worker = null;

async function call(op, args = {}) {
  try {
    return { ok: true, result: await worker.call(op, args) };
  } catch (error) {
    return { ok: false, error: error.message, kind: error.kind, name: error.errorName };
  }
}

window.workerTest = {
  violations,
  wasmWorks,
  async start(orgPublicKey) {
    worker = new CryptoWorker();
    const manifest = await (await fetch("/api/source/manifest", { cache: "no-store" })).text();
    return call("init", { orgPublicKey, manifest });
  },
  async init(orgPublicKey, manifest) {
    worker ??= new CryptoWorker();
    return call("init", { orgPublicKey, manifest });
  },
  manifestText: async () => (await fetch("/api/source/manifest", { cache: "no-store" })).text(),
  codename: () => call("codename"),
  async derive(codename) {
    const reply = await call("derive", { codename });
    if (reply.ok) reply.result.replySecretKey = toBase64(reply.result.replySecretKey);
    return reply;
  },
  async seal(message, replyPublicKey) {
    const files = Array.from(document.getElementById("files").files);
    const progress = [];
    try {
      const sealed = await worker.call("seal", { message, files, replyPublicKey },
        (p) => progress.push([p.done, p.total]));
      const envelope = new Uint8Array(await sealed.envelope.arrayBuffer());
      return {
        ok: true, envelope: toBase64(envelope), header: toBase64(sealed.header),
        isBlob: sealed.envelope instanceof Blob, progress,
      };
    } catch (error) {
      return { ok: false, error: error.message };
    }
  },
  async open(envelope, replySecretKey) {
    return call("open", { envelope: fromBase64(envelope).buffer, replySecretKey: fromBase64(replySecretKey) });
  },
};
document.body.dataset.ready = "yes";
