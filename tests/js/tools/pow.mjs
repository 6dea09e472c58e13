// Solve a proof-of-work challenge with the browser's code, for tests/server/test_proof_of_work.py.
//   node tests/js/tools/pow.mjs CHALLENGE_B64 DIFFICULTY -> {"nonce": b64, "ms": n}
import { PowError, solve } from "../../../static/js/pow.js";
import { b64d, b64e } from "../../../static/js/encoding.js";

const [challenge, difficulty] = process.argv.slice(2);
const started = Date.now();
const nonce = solve(b64d(challenge, 58, PowError, "the challenge"), Number(difficulty));
console.log(JSON.stringify({ nonce: b64e(nonce), ms: Date.now() - started }));
