// Open an envelope with the browser's code, for tests/test_interop.py.
//   node tests/js/tools/open.mjs ENVELOPE SECRET_KEY_B64
// Prints {"ok": true, inner, attachments: [b64]} or {"ok": false, kind, error}.
import { readFileSync } from "node:fs";

import { TiplineError, b64d, b64e } from "../../../static/js/encoding.js";
import { openEnvelope } from "../../../static/js/envelope.js";

const [path, secret] = process.argv.slice(2);
try {
  const { inner, attachments } = openEnvelope(
    new Uint8Array(readFileSync(path)), [b64d(secret, 32, TiplineError, "secret key")]);
  console.log(JSON.stringify({
    ok: true,
    inner: {
      kind: inner.kind, sealed_by: inner.sealedBy, message: inner.message,
      reply_public_key: inner.replyPublicKey && b64e(inner.replyPublicKey),
      attachments: inner.attachments,
    },
    attachments: attachments.map(b64e),
  }));
} catch (error) {
  if (!(error instanceof TiplineError)) throw error;
  console.log(JSON.stringify({ ok: false, kind: error.kind, error: error.message }));
}
