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
  // Seal as the submit page does, pulling pieces of `max` bytes; the pieces are joined here
  // only so that Python can check the bytes.
  async seal(message, replyPublicKey, max = 1 << 18) {
    const files = Array.from(document.getElementById("files").files);
    const progress = [];
    const pieces = [];
    try {
      const started = await worker.call("sealStart", { message, files, replyPublicKey });
      let end = false;
      while (!end) {
        const piece = await worker.call("sealNext", { stream: started.stream, max });
        if (!(piece.data instanceof ArrayBuffer)) throw new Error("a piece is not an ArrayBuffer");
        pieces.push(new Uint8Array(piece.data));
        progress.push([piece.done, piece.total]);
        end = piece.end;
      }
      const envelope = new Uint8Array(await new Blob([started.header, ...pieces]).arrayBuffer());
      return {
        ok: true, envelope: toBase64(envelope), header: toBase64(started.header),
        size: started.size, pieceSizes: pieces.map((p) => p.length), progress,
      };
    } catch (error) {
      return { ok: false, error: error.message };
    }
  },
  // Start a seal, take one piece, cancel it; then the stream is gone.
  async sealCancel(message, replyPublicKey) {
    const files = Array.from(document.getElementById("files").files);
    const started = await worker.call("sealStart", { message, files, replyPublicKey });
    const first = await worker.call("sealNext", { stream: started.stream, max: 1024 });
    await worker.call("sealCancel", { stream: started.stream });
    const after = await call("sealNext", { stream: started.stream, max: 1024 });
    return { first: first.data.byteLength, end: first.end, after };
  },
  async open(envelope, replySecretKey) {
    return call("open", { envelope: fromBase64(envelope).buffer, replySecretKey: fromBase64(replySecretKey) });
  },
};
document.body.dataset.ready = "yes";
