// Codenames with the browser's code, for tests/test_interop.py.
//   node tests/js/tools/codename.mjs derive < ["typed codename", ...]
//     -> [{normalized, login_token, token_hash, reply_public_key} | {error_kind}]
//   node tests/js/tools/codename.mjs generate N -> [codename, ...]
import { readFileSync } from "node:fs";

import { derive, generate, loadWordlist, normalize } from "../../../static/js/codename.js";
import { TiplineError, b64e } from "../../../static/js/encoding.js";

const wordlist = loadWordlist(
  readFileSync(new URL("../../../static/build/eff-long.txt", import.meta.url), "utf-8"));
const [command, count] = process.argv.slice(2);
if (command === "generate") {
  console.log(JSON.stringify(Array.from({ length: Number(count) }, () => generate(wordlist))));
} else {
  const typed = JSON.parse(readFileSync(0, "utf-8"));
  console.log(JSON.stringify(typed.map((text) => {
    try {
      const normalized = normalize(wordlist, text);
      const d = derive(normalized);
      return {
        normalized, login_token: b64e(d.loginToken), token_hash: b64e(d.tokenHash),
        reply_public_key: b64e(d.replyPublicKey), reply_secret_key: b64e(d.replySecretKey),
      };
    } catch (error) {
      if (!(error instanceof TiplineError)) throw error;
      return { error_kind: error.kind };
    }
  })));
}
