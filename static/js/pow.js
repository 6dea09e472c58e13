// The proof-of-work the page does before an upload may start (docs/SPEC.md §10): the JavaScript
// twin of tipline/crypto/proof_of_work.py (the server checks with it). A BLAKE2b hashcash: find an 8-byte
// nonce such that DS("tipline/v1/pow-solution", challenge || nonce, 32) starts with
// `difficulty` zero bits. Each try is one libsodium call; about 2^difficulty tries on average.
import { TiplineError } from "./encoding.js";
import { ds } from "./sodium.js";

export const DS_POW_SOLUTION = new TextEncoder().encode("tipline/v1/pow-solution");
export const CHALLENGE_SIZE = 58;
export const NONCE_SIZE = 8;
export const MAX_DIFFICULTY = 24;

export class PowError extends TiplineError {
  constructor(detail = null) { super("the browser check could not be done", detail); }
  get kind() { return "pow_error"; }
}

// How many zero bits `digest` starts with.
export function leadingZeroBits(digest) {
  let count = 0;
  for (const byte of digest) {
    if (byte) return count + Math.clz32(byte) - 24;
    count += 8;
  }
  return count;
}

// The 32-byte hash a solution is judged by.
export function solutionHash(challenge, nonce) {
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_SIZE) throw new PowError("a nonce is 8 bytes");
  const input = new Uint8Array(challenge.length + NONCE_SIZE);
  input.set(challenge);
  input.set(nonce, challenge.length);
  return ds(DS_POW_SOLUTION, input, 32);
}

// Whether `nonce` solves `challenge` at `difficulty`.
export function solves(challenge, nonce, difficulty) {
  return leadingZeroBits(solutionHash(challenge, nonce)) >= difficulty;
}

// The nonce (8 bytes) that solves `challenge` at `difficulty`. `onProgress(tries)` is called
// every `every` tries, so the caller can show that work goes on (or throw to stop).
export function solve(challenge, difficulty, { onProgress = null, every = 1 << 14 } = {}) {
  if (!(challenge instanceof Uint8Array) || challenge.length !== CHALLENGE_SIZE) {
    throw new PowError(`a challenge is ${CHALLENGE_SIZE} bytes`);
  }
  if (!Number.isInteger(difficulty) || difficulty < 0 || difficulty > MAX_DIFFICULTY) {
    throw new PowError(`the difficulty is 0 to ${MAX_DIFFICULTY} bits`);
  }
  const input = new Uint8Array(CHALLENGE_SIZE + NONCE_SIZE);
  input.set(challenge);
  const view = new DataView(input.buffer, CHALLENGE_SIZE, NONCE_SIZE);
  // Counting up from zero, big-endian, as tipline/crypto/proof_of_work.py's solve() does; 2^32
  // tries fail to find a 24-bit solution with probability about e^-256.
  for (let tries = 0; tries < 2 ** 32; tries++) {
    view.setUint32(4, tries);
    if (leadingZeroBits(ds(DS_POW_SOLUTION, input, 32)) >= difficulty) {
      return input.slice(CHALLENGE_SIZE);
    }
    if (onProgress && tries % every === every - 1) onProgress(tries + 1);
  }
  throw new PowError("no solution found");
}
