// Padmé padding (Nikitin et al., PETS 2019), docs/SPEC.md §4.5; the twin of
// tipline/crypto/padding.py. Padmé rounds a length L to a value with only O(log log L)
// significant bits, so ciphertext sizes say little about the plaintext, at most 12 % overhead.
//
// Lengths go up to 2^40, beyond 32 bits: no bitwise operators here. Every value stays an
// integer below 2^53, where doubles are exact, and division by a power of two is exact too.

export const MIN_PLAINTEXT = 4096;

// floor(log2 n) for a positive integer n < 2^53, without Math.log2's rounding.
function floorLog2(n) {
  let e = 0;
  while (2 ** (e + 1) <= n) e++;
  return e;
}

export function padme(length) {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError("length must be a whole number >= 0");
  if (length < 2) return length;
  const e = floorLog2(length);
  const s = floorLog2(e) + 1;
  const step = 2 ** (e - s);
  return Math.ceil(length / step) * step;
}

// The total plaintext length an envelope carries for `length` bytes of content. The floor makes
// every short message the same size, where Padmé alone would still leak it.
export function paddedLength(length) {
  return padme(Math.max(length, MIN_PLAINTEXT));
}
