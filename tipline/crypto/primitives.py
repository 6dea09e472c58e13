"""The few primitives every format is built from, and why each is safe.

All of them are libsodium through PyNaCl, so the browser (libsodium.js) computes the same bytes.
Names and values are those of docs/SPEC.md §1.1.
"""

from __future__ import annotations

import hmac

import nacl.bindings as sodium
import nacl.utils

DS_KEY_ID = b"tipline/v1/key-id"
DS_FINGERPRINT = b"tipline/v1/fingerprint"
DS_WORDLIST = b"tipline/v1/codename-wordlist"
DS_LOGIN_TOKEN = b"tipline/v1/codename/login-token"
DS_TOKEN_HASH = b"tipline/v1/codename/token-hash"
DS_REPLY_SEED = b"tipline/v1/codename/reply-key-seed"
LABEL_PAYLOAD_KEY = b"tipline/v1/payload-key"
LABEL_HEADER_MAC = b"tipline/v1/header-mac-key"
SIG_KEY_MANIFEST = b"tipline/v1/key-manifest\x00"
SIG_KEY_REQUEST = b"tipline/v1/key-request\x00"
SIG_TRIAGE = b"tipline/v1/triage\x00"
DS_SPOOL = b"tipline/v1/server-spool"

KEY_BYTES = 32


def ds(domain: bytes, data: bytes, size: int) -> bytes:
    """Hash ``data`` with BLAKE2b keyed by a domain string.

    Keyed BLAKE2b with distinct keys gives independent hash functions; libsodium.js's default
    build has no personalisation parameter, and a key of 16-64 bytes is the documented way.
    """
    if not 16 <= len(domain) <= 64:
        raise ValueError("domain strings are 16 to 64 bytes")
    return sodium.crypto_generichash_blake2b_salt_personal(data, digest_size=size, key=domain)


def prf(key: bytes, label: bytes, size: int) -> bytes:
    """Derive a subkey from a uniformly random 32-byte key: BLAKE2b keyed by it, over a label.

    Keyed BLAKE2b is a PRF, so subkeys with distinct labels are independent of each other and of
    the parent key.
    """
    if len(key) != KEY_BYTES:
        raise ValueError("PRF keys are 32 bytes")
    return sodium.crypto_generichash_blake2b_salt_personal(label, digest_size=size, key=key)


def mac(key: bytes, data: bytes) -> bytes:
    """A 32-byte BLAKE2b MAC (keyed BLAKE2b is a MAC by design, unlike plain SHA-2)."""
    return sodium.crypto_generichash_blake2b_salt_personal(data, digest_size=32, key=key)


def equal(a: bytes, b: bytes) -> bool:
    """Compare two MACs in constant time, so timing does not tell how many bytes matched."""
    return hmac.compare_digest(a, b)


def random_bytes(size: int) -> bytes:
    """Bytes from libsodium's CSPRNG (getrandom on Linux)."""
    return nacl.utils.random(size)


def random_below(bound: int) -> int:
    """A uniform integer in [0, bound) by rejection sampling, as randombytes_uniform does.

    Taking ``x % bound`` of a plain random integer would favour small values.
    """
    if not 0 < bound <= 1 << 32:
        raise ValueError("bound must be in 1 .. 2**32")
    limit = (1 << 32) - ((1 << 32) % bound)
    while True:
        x = int.from_bytes(random_bytes(4), "big")
        if x < limit:
            return x % bound
