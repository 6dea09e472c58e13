"""An Ed25519 key that signs but does not convert to X25519, made by hand (RFC 8032's
arithmetic, for tests only): its point is a*B plus the point of order 2. libsodium's signature
check refuses small-order and non-canonical keys but not this one, so a signature whose hash is
even verifies under it (h * T cancels); ``crypto_sign_ed25519_pk_to_curve25519`` also wants the
point in the prime-order subgroup, and refuses it. PyNaCl cannot make such a key.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable

P = 2**255 - 19
D = -121665 * pow(121666, P - 2, P) % P
L = 2**252 + 27742317777372353535851937790883648493
SQRT_M1 = pow(2, (P - 1) // 4, P)

Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T)


def _add(p: Point, q: Point) -> Point:
    a = (p[1] - p[0]) * (q[1] - q[0]) % P
    b = (p[1] + p[0]) * (q[1] + q[0]) % P
    c = 2 * p[3] * q[3] * D % P
    d = 2 * p[2] * q[2] % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(s: int, p: Point) -> Point:
    q: Point = (0, 1, 1, 0)
    while s:
        if s & 1:
            q = _add(q, p)
        p = _add(p, p)
        s >>= 1
    return q


def _encode(p: Point) -> bytes:
    zi = pow(p[2], P - 2, P)
    x, y = p[0] * zi % P, p[1] * zi % P
    return (y | (x & 1) << 255).to_bytes(32, "little")


def _base() -> Point:
    y = 4 * pow(5, P - 2, P) % P
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if x & 1:
        x = P - x
    return (x, y, 1, x * y % P)


B = _base()
ORDER_2: Point = (0, P - 1, 1, 0)  # (0, -1)


def _hash(*parts: bytes) -> int:
    return int.from_bytes(hashlib.sha512(b"".join(parts)).digest(), "little") % L


def signing_key_and_signature(
    message_of: Callable[[bytes, int], bytes],
) -> tuple[bytes, bytes, bytes]:
    """(signing key, message, signature): ``message_of(key, n)`` is the n-th message to try
    (it may name the key); the first whose hash is even is signed (half are, so a few tries)."""
    a = secrets.randbelow(L - 1) + 1
    key = _encode(_add(_mul(a, B), ORDER_2))
    for n in range(256):
        message = message_of(key, n)
        r = secrets.randbelow(L - 1) + 1
        big_r = _encode(_mul(r, B))
        h = _hash(big_r, key, message)
        if h % 2 == 0:
            return key, message, big_r + ((r + h * a) % L).to_bytes(32, "little")
    raise AssertionError("no even hash in 256 tries")
