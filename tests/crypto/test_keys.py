"""Key files, key ids, fingerprints and passphrase-locked secrets (docs/SPEC.md §2)."""

from __future__ import annotations

import json
import re

import pytest

from tipline.crypto import keys
from tipline.crypto.encoding import b64d, b64e
from tipline.crypto.errors import KeyFileError, LockedSecretError

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
