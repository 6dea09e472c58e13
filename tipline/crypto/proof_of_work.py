"""The proof-of-work's hashcash (docs/SPEC.md §10), shared by the server that checks it and the
tests; ``static/js/pow.js`` is its JavaScript twin, byte for byte.

A solution to a challenge at difficulty ``d`` is an 8-byte nonce such that
``DS("tipline/v1/pow-solution", challenge || nonce, 32)`` starts with ``d`` zero bits. BLAKE2b
is what libsodium.js offers in every browser that runs the Worker; it has no known shortcut, so
the expected work is 2^d hashes for anyone, and checking it is one hash.
"""

from __future__ import annotations

from .errors import TiplineError
from .primitives import ds

DS_POW_SOLUTION = b"tipline/v1/pow-solution"
NONCE_SIZE = 8
MAX_DIFFICULTY = 24


class PowError(TiplineError):
    """the proof of work does not solve its challenge"""


def leading_zero_bits(digest: bytes) -> int:
    """How many zero bits ``digest`` starts with."""
    count = 0
    for byte in digest:
        if byte:
            return count + 8 - byte.bit_length()
        count += 8
    return count


def solution_hash(challenge: bytes, nonce: bytes) -> bytes:
    """The 32-byte hash a solution is judged by."""
    if len(nonce) != NONCE_SIZE:
        raise ValueError("a nonce is 8 bytes")
    return ds(DS_POW_SOLUTION, challenge + nonce, 32)


def solves(challenge: bytes, nonce: bytes, difficulty: int) -> bool:
    """Whether ``nonce`` solves ``challenge`` at ``difficulty``."""
    return leading_zero_bits(solution_hash(challenge, nonce)) >= difficulty


def check(challenge: bytes, nonce: bytes, difficulty: int) -> None:
    """Raise ``PowError`` unless ``nonce`` solves ``challenge`` at ``difficulty``."""
    if len(nonce) != NONCE_SIZE:
        raise PowError("a nonce is 8 bytes")
    if not solves(challenge, nonce, difficulty):
        raise PowError("its hash starts with too few zero bits")


def solve(challenge: bytes, difficulty: int) -> bytes:
    """The first nonce (counting up from zero, big-endian) that solves ``challenge``: what the
    browser does, for tests and vectors.
    """
    if not 0 <= difficulty <= MAX_DIFFICULTY:
        raise ValueError("the difficulty is 0 to 24 bits")
    tries = 0
    while not solves(challenge, tries.to_bytes(NONCE_SIZE, "big"), difficulty):
        tries += 1
    return tries.to_bytes(NONCE_SIZE, "big")
