// Seal a submission with the browser's code, for tests/test_interop.py and bench/.
//   node tests/js/tools/seal.mjs REQUEST.json OUT
// REQUEST: {recipients: [b64 public key], message, reply_public_key: b64 | null,
//           kind: "submission" | "reply", attachments: [{name, type, path}]}
// Attachments are read as file-backed Blobs (fs.openAsBlob), sliced 64 KiB at a time as the
// Worker slices a File. Prints {"size": N, "header": b64}.
import { createWriteStream, openAsBlob, readFileSync } from "node:fs";
import { once } from "node:events";

import { TiplineError, b64d, b64e } from "../../../static/js/encoding.js";
import { seal } from "../../../static/js/envelope.js";

const [requestPath, outPath] = process.argv.slice(2);
const request = JSON.parse(readFileSync(requestPath, "utf-8"));
const key = (text) => b64d(text, 32, TiplineError, "key");
const sources = await Promise.all(request.attachments.map((a) => openAsBlob(a.path)));
const inner = {
  kind: request.kind ?? "submission",
  sealedBy: request.sealed_by ?? "browser",
  message: request.message,
  replyPublicKey: request.reply_public_key ? key(request.reply_public_key) : null,
  attachments: request.attachments.map((a, i) => ({ name: a.name, size: sources[i].size, type: a.type })),
};
const out = createWriteStream(outPath);
let size = 0;
let header = null;
for await (const piece of seal(request.recipients.map(key), inner, sources)) {
  header ??= piece;
  size += piece.length;
  if (!out.write(piece)) await once(out, "drain");
}
out.end();
await once(out, "finish");
console.log(JSON.stringify({ size, header: b64e(header) }));
