// Verify a signed key manifest with the browser's code, for tests/test_interop.py.
//   node tests/js/tools/manifest.mjs SIGNED_FILE ORG_PUBLIC_KEY_B64 [TODAY]
// Prints {"ok": true, version, recipients: [{key_id, public_key, label}]} or
// {"ok": false, kind, error}.
import { readFileSync } from "node:fs";

import { TiplineError, b64d, b64e } from "../../../static/js/encoding.js";
import { verifyManifest } from "../../../static/js/manifest.js";

const [path, org, today] = process.argv.slice(2);
try {
  const m = verifyManifest(new Uint8Array(readFileSync(path)), b64d(org, 32, TiplineError, "org key"),
    today ?? null);
  console.log(JSON.stringify({
    ok: true, version: m.version,
    recipients: m.recipients.map((r) => ({ key_id: r.keyId, public_key: b64e(r.publicKey), label: r.label })),
  }));
} catch (error) {
  if (!(error instanceof TiplineError)) throw error;
  console.log(JSON.stringify({ ok: false, kind: error.kind, error: error.message }));
}
