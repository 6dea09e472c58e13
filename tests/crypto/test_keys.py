"""Key files, key ids, fingerprints and passphrase-locked secrets (docs/SPEC.md §2)."""

from __future__ import annotations

import json
import re

import pytest
from nacl.signing import SigningKey

from tipline.crypto import keys
from tipline.crypto.encoding import b64d, b64e
from tipline.crypto.errors import KeyFileError, LockedSecretError, TiplineError
from tipline.crypto.primitives import SIG_KEY_MANIFEST, SIG_KEY_REQUEST, SIG_TRIAGE

from . import mixed_order

FAST = {"opslimit": 1, "memlimit": 8 << 20}


def test_key_files_round_trip(alice: keys.RecipientSecret) -> None:
    org = keys.OrgSecret.generate()
    for key in (alice, alice.public, org, org.public):
        assert keys.load_key_file(key.to_json()) == key


def test_repr_hides_secrets(alice: keys.RecipientSecret) -> None:
    org = keys.OrgSecret.generate()
    assert b64e(alice.secret_key) not in repr(alice)
    assert alice.secret_key.hex() not in repr(alice)
    assert org.seed.hex() not in repr(org) and str(org.seed) not in repr(org)


def test_key_id_and_fingerprint_shape() -> None:
    org = keys.OrgSecret.generate().public
    assert re.fullmatch(r"([A-Z2-7]{4} ){7}[A-Z2-7]{4}", org.fingerprint)
    assert keys.fingerprint(org.public_key) == org.fingerprint
    assert keys.fingerprint(bytes(32)) != keys.fingerprint(b"\x01" + bytes(31))
    assert len(keys.key_id(bytes(32))) == 16


@pytest.mark.parametrize(
    "doc, message",
    [
        (
            {"type": "tipline-recipient-public", "v": 1, "label": "A", "public_key": "AAAA"},
            "32 bytes",
        ),
        (
            {
                "type": "tipline-recipient-public",
                "v": 1,
                "label": "A",
                "public_key": b64e(bytes(32)),
                "extra": 1,
            },
            "unknown extra",
        ),
        (
            {"type": "tipline-recipient-public", "v": 1, "public_key": b64e(bytes(32))},
            "missing label",
        ),
        (
            {
                "type": "tipline-recipient-public",
                "v": 2,
                "label": "A",
                "public_key": b64e(bytes(32)),
            },
            "version 1",
        ),
        (
            {
                "type": "tipline-recipient-public",
                "v": 1,
                "label": "bad\u202elabel",
                "public_key": b64e(bytes(32)),
            },
            "control",
        ),
        (
            {
                "type": "tipline-recipient-public",
                "v": 1,
                "label": "x" * 65,
                "public_key": b64e(bytes(32)),
            },
            "1 to 64",
        ),
        (
            {
                "type": "tipline-recipient-public",
                "v": 1,
                "label": "A",
                "public_key": b64e(bytes(32)).rstrip("="),
            },
            "canonical",
        ),
        ({"type": "something-else", "v": 1}, "unknown key file type"),
    ],
)
def test_bad_key_files(doc: dict[str, object], message: str) -> None:
    with pytest.raises(KeyFileError, match=message):
        keys.load_key_file(json.dumps(doc).encode())


def test_key_file_bounds() -> None:
    with pytest.raises(KeyFileError, match="larger than 4096"):
        keys.load_key_file(b" " * 4097)
    with pytest.raises(KeyFileError, match="not valid JSON"):
        keys.load_key_file(b"\xff\xfe")
    with pytest.raises(KeyFileError, match="not valid JSON"):
        keys.load_key_file(b'{"a": 1, "a": 2}')
    with pytest.raises(KeyFileError, match="not valid JSON"):
        keys.load_key_file(b'{"a": 1.5}')
    with pytest.raises(KeyFileError, match="not valid JSON"):
        keys.load_key_file(b"[" * 2000 + b"]" * 2000)


def test_lock_round_trip() -> None:
    locked = keys.lock(b"secret bytes", "correct horse", **FAST)
    assert b"secret bytes" not in locked
    assert keys.unlock(locked, "correct horse") == b"secret bytes"
    # NFKC: a passphrase typed with a compatibility form still opens.
    assert keys.unlock(keys.lock(b"s", "\ufb01sh", **FAST), "fish") == b"s"


def test_lock_refusals() -> None:
    locked = keys.lock(b"secret bytes", "correct horse", **FAST)
    with pytest.raises(LockedSecretError) as wrong:
        keys.unlock(locked, "wrong horse")
    doc = json.loads(locked)
    box = bytearray(b64d(doc["box"], None, LockedSecretError, "box"))
    box[-1] ^= 1
    with pytest.raises(LockedSecretError) as modified:
        keys.unlock(json.dumps({**doc, "box": b64e(bytes(box))}).encode(), "correct horse")
    assert str(wrong.value) == str(modified.value)


def test_lock_cost_is_bounded_before_work() -> None:
    locked = json.loads(keys.lock(b"s", "p", **FAST))
    # The message names the field, so the refusal came from the bound, not from libsodium.
    for field, value in [("memlimit", 1 << 40), ("opslimit", 10**6), ("memlimit", 1)]:
        with pytest.raises(LockedSecretError, match=field):
            keys.unlock(json.dumps({**locked, field: value}).encode(), "p")


# -- verify_derived: the signature and the X25519 key it proves (SPEC §3.1, §8.5) ------------


class RefusedError(TiplineError):
    """refused"""


BODY = b'{"a document":"signed"}'
SIGNING = SigningKey(bytes(range(32)))
DERIVED = bytes(SIGNING.verify_key.to_curve25519_public_key())


def verified(signing_key: bytes, body: bytes, signature: bytes) -> bytes | str:
    """What ``verify_derived`` gives under SIG_KEY_REQUEST: the key, or the words it refused
    with (always as the caller's error class)."""
    try:
        return keys.verify_derived(
            signing_key,
            SIG_KEY_REQUEST,
            body,
            signature,
            RefusedError,
            "the signature does not verify",
        )
    except TiplineError as exc:
        assert type(exc) is RefusedError
        return str(exc.detail)


def signed(prefix: bytes, body: bytes = BODY, key: SigningKey = SIGNING) -> bytes:
    return key.sign(prefix + body).signature


def test_verify_derived_gives_the_derived_key() -> None:
    vk = bytes(SIGNING.verify_key)
    # The key the recipient secret derived from the same signing key has (SPEC §3.1).
    assert (
        keys.RecipientSecret(bytes(SIGNING.to_curve25519_private_key()), "x").public.public_key
        == DERIVED
    )
    assert verified(vk, BODY, signed(SIG_KEY_REQUEST)) == DERIVED
    # Another signer's key derives another key: what a caller compares with its document.
    other = SigningKey(bytes(32))
    other_derived = bytes(other.verify_key.to_curve25519_public_key())
    assert verified(bytes(other.verify_key), BODY, signed(SIG_KEY_REQUEST, key=other)) == (
        other_derived
    )
    assert other_derived != DERIVED


def test_verify_derived_refuses_a_bad_signature() -> None:
    vk = bytes(SIGNING.verify_key)
    good = signed(SIG_KEY_REQUEST)
    assert verified(vk, BODY + b" ", good) == "the signature does not verify"  # altered body
    other = SigningKey(bytes(32))
    assert verified(vk, BODY, signed(SIG_KEY_REQUEST, key=other)) == "the signature does not verify"
    flipped = bytes([good[0] ^ 1]) + good[1:]
    assert verified(vk, BODY, flipped) == "the signature does not verify"


def test_verify_derived_refuses_a_signature_under_another_domain() -> None:
    vk = bytes(SIGNING.verify_key)
    # Another format's prefix, none, and this one without its zero byte.
    for prefix in (SIG_TRIAGE, SIG_KEY_MANIFEST, b"", SIG_KEY_REQUEST[:-1]):
        assert verified(vk, BODY, signed(prefix)) == "the signature does not verify", prefix
    # Control: the triage signature is good under its own prefix.
    triage = signed(SIG_TRIAGE)
    assert keys.verify_derived(vk, SIG_TRIAGE, BODY, triage, RefusedError, "x") == DERIVED


def test_verify_derived_refuses_malformed_signing_keys() -> None:
    sig = signed(SIG_KEY_REQUEST)
    vk = bytes(SIGNING.verify_key)
    for key in (vk[:31], vk + b"\0", b"", bytes([0xFF] * 32), bytes(32)):
        assert verified(key, BODY, sig) == "the signature does not verify", key.hex()
    # One that signs yet does not convert (tests/crypto/mixed_order.py): the shared words.
    key, message, signature = mixed_order.signing_key_and_signature(
        lambda _key, n: SIG_KEY_REQUEST + BODY + b" " * n
    )
    body = message[len(SIG_KEY_REQUEST) :]
    assert keys.verify_signature(key, message, signature)  # control: it does verify
    assert verified(key, body, signature) == "its signing key is not a valid key"
