// Codenames (docs/SPEC.md §5): the checked word list, generation, normalisation and the derived
// login token and reply keypair. The twin of tipline/crypto/codename.py.
//
// A codename is seven words from the EFF large list chosen by the machine: about 90.5 bits. The
// derivations are fast BLAKE2b on purpose (SPEC §5.3 says why). No message here ever repeats
// what was typed: a codename must not reach a log or an error report.
import { CodenameError, WordlistError, hexe, utf8 } from "./encoding.js";
import { DS_LOGIN_TOKEN, DS_REPLY_SEED, DS_TOKEN_HASH, DS_WORDLIST, ds, sodium } from "./sodium.js";

export const WORDLIST_SIZE = 7776;
export const WORDLIST_DIGEST = "016da683da6f5786041cd3f55245cb28c210d83d021163358aaefa5b47265005";
export const CODENAME_WORDS = 7;
export const MAX_CODENAME_WORDS = 12;
export const MAX_CODENAME_BYTES = 256;
const MAX_WORDLIST_BYTES = 1 << 20;

// Python's str.split() whitespace (Unicode White_Space plus the ASCII separators \x1c-\x1f),
// so both sides cut what a source typed into the same words.
const WHITESPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

// Parse the word list (one word per line, as Python's splitlines reads it) and check that it
// is exactly the expected one, by count and by digest.
export function loadWordlist(text) {
  if (typeof text !== "string" || text.length > MAX_WORDLIST_BYTES) throw new WordlistError();
  const words = text.split(/\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]/);
  if (words.length && words[words.length - 1] === "") words.pop();
  if (words.length !== WORDLIST_SIZE) throw new WordlistError();
  if (hexe(ds(DS_WORDLIST, utf8(words.join("\n")), 32)) !== WORDLIST_DIGEST) throw new WordlistError();
  return { words, index: new Set(words) };
}

// A new codename: `count` words chosen uniformly and independently (randombytes_uniform
// rejects the biased range, unlike a plain modulo).
export function generate(wordlist, count = CODENAME_WORDS) {
  if (count < CODENAME_WORDS || count > MAX_CODENAME_WORDS) {
    throw new CodenameError(`a codename has ${CODENAME_WORDS} to ${MAX_CODENAME_WORDS} words`);
  }
  const words = [];
  for (let i = 0; i < count; i++) words.push(wordlist.words[sodium.randombytes_uniform(WORDLIST_SIZE)]);
  return words.join(" ");
}

// What the source typed, in the one form every derivation uses (NFKC, lowercase, single
// spaces); refuses anything else before deriving.
export function normalize(wordlist, typed) {
  if (typeof typed !== "string") throw new CodenameError("it is not text");
  // Over 1024 code points is refused before normalising; counting code points of a huge string
  // is itself work, and more than 2048 UTF-16 units is always more than 1024 code points.
  if (typed.length > 8 * MAX_CODENAME_BYTES || [...typed].length > 4 * MAX_CODENAME_BYTES) {
    throw new CodenameError("it is too long");
  }
  const words = typed.normalize("NFKC").toLowerCase().split(WHITESPACE).filter((w) => w !== "");
  if (words.length < CODENAME_WORDS || words.length > MAX_CODENAME_WORDS) {
    throw new CodenameError(`a codename has ${CODENAME_WORDS} to ${MAX_CODENAME_WORDS} words`);
  }
  if (words.some((w) => !wordlist.index.has(w))) {
    throw new CodenameError("one of the words is not in the codename word list");
  }
  const text = words.join(" ");
  if (utf8(text).length > MAX_CODENAME_BYTES) throw new CodenameError("it is too long");
  return text;
}

// What the server stores of a login token: a hash the token cannot be recovered from.
export function loginTokenHash(loginToken) {
  if (loginToken.length !== 32) throw new CodenameError("a login token is 32 bytes");
  return ds(DS_TOKEN_HASH, loginToken, 32);
}

// The login token, its stored hash and the reply keypair of a normalised codename.
export function derive(normalized) {
  const data = utf8(normalized);
  const loginToken = ds(DS_LOGIN_TOKEN, data, 32);
  const seed = ds(DS_REPLY_SEED, data, 32);
  const { publicKey, privateKey } = sodium.crypto_box_seed_keypair(seed);
  sodium.memzero(seed);
  return { loginToken, tokenHash: loginTokenHash(loginToken), replySecretKey: privateKey, replyPublicKey: publicKey };
}
