"""An Ed25519 key that signs but does not convert to X25519, for tests only, made with libsodium's
group operations (PyNaCl's ``nacl.bindings``): its point is a*B plus the point of order 2.
libsodium's signature check refuses small-order and non-canonical keys but not this one, so a
signature whose hash is even verifies under it (h * T cancels); ``crypto_sign_ed25519_pk_to_
curve25519`` also wants the point in the prime-order subgroup, and refuses it. PyNaCl's
``SigningKey`` cannot make such a key.
"""

from __future__ import annotations

from collections.abc import Callable

from nacl import bindings as b
from nacl.encoding import RawEncoder
from nacl.hash import sha512

P = 2**255 - 19
ORDER_2 = (P - 1).to_bytes(32, "little")  # the point (0, -1), of order 2


def _scalar() -> bytes:
    """A random scalar in [1, L), reduced by libsodium."""
    return b.crypto_core_ed25519_scalar_reduce(b.randombytes(64))


def signing_key_and_signature(
    message_of: Callable[[bytes, int], bytes],
) -> tuple[bytes, bytes, bytes]:
    """(signing key, message, signature): ``message_of(key, n)`` is the n-th message to try
    (it may name the key); the first whose hash is even is signed (half are, so a few tries)."""
    a = _scalar()
    key = b.crypto_core_ed25519_add(b.crypto_scalarmult_ed25519_base_noclamp(a), ORDER_2)
    assert not b.crypto_core_ed25519_is_valid_point(key)  # not in the prime-order subgroup
    for n in range(256):
        message = message_of(key, n)
        r = _scalar()
        big_r = b.crypto_scalarmult_ed25519_base_noclamp(r)
        h = b.crypto_core_ed25519_scalar_reduce(sha512(big_r + key + message, RawEncoder))
        if h[0] % 2 == 0:
            s = b.crypto_core_ed25519_scalar_add(r, b.crypto_core_ed25519_scalar_mul(h, a))
            return key, message, big_r + s
    raise AssertionError("no even hash in 256 tries")
