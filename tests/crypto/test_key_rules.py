"""Key files and locked secrets, rule by rule: each refusal with its exact message and class,
each limit at its edge, and a locked file built straight from libsodium as a known answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import nacl.pwhash
import nacl.secret
import pytest
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from tipline.crypto import keys
from tipline.crypto.encoding import b64e
from tipline.crypto.errors import KeyFileError, LockedSecretError, TiplineError

FAST = {"opslimit": 1, "memlimit": 8 << 20}


def refused(
    error: type[TiplineError], call: Callable[..., object], *args: object, **kw: object
) -> str:
    with pytest.raises(error) as info:
        call(*args, **kw)
    assert type(info.value) is error
    return str(info.value.detail)


def test_key_id_and_fingerprint_want_32_bytes() -> None:
    for size in (31, 33):
        assert refused(KeyFileError, keys.key_id, bytes(size)) == "a public key is 32 bytes"
        assert refused(KeyFileError, keys.fingerprint, bytes(size)) == (
            "an org public key is 32 bytes"
        )


def test_short_key_id() -> None:
    assert keys.short_key_id(bytes(range(16))) == "00010203"


def test_expect_account() -> None:
    for good in ("ab", "a" * 64, "j.doe-2_x", "0a"):
        assert keys.expect_account(good, KeyFileError) == good
    for bad in ("a", "a" * 65, "Ab", ".ab", "a b", "ab\n", 5, None):
        assert refused(KeyFileError, keys.expect_account, bad, KeyFileError) == (
            "account must be 2 to 64 lowercase letters, digits, '.', '-' or '_'"
        ), bad
    assert refused(KeyFileError, keys.expect_account, "A", KeyFileError, "owner").startswith(
        "owner must be"
    )


def test_generate_checks_the_label() -> None:
    assert keys.RecipientSecret.generate("x" * 64).label == "x" * 64
    assert refused(KeyFileError, keys.RecipientSecret.generate, "x" * 65) == (
        "label must be 1 to 64 characters"
    )
    assert refused(KeyFileError, keys.RecipientSecret.generate, "") == (
        "label must be 1 to 64 characters"
    )


def test_key_files_are_canonical_json() -> None:
    secret = keys.RecipientSecret(bytes(range(32)), "Alice")
    pk = bytes(PrivateKey(bytes(range(32))).public_key)
    assert (
        secret.to_json()
        == (
            '{"label":"Alice","secret_key":"'
            + b64e(bytes(range(32)))
            + '","type":"tipline-recipient-secret","v":1}'
        ).encode()
    )
    assert (
        secret.public.to_json()
        == (
            '{"label":"Alice","public_key":"'
            + b64e(pk)
            + '","type":"tipline-recipient-public","v":1}'
        ).encode()
    )
    org = keys.OrgSecret(bytes(32))
    vk = bytes(SigningKey(bytes(32)).verify_key)
    assert (
        org.to_json()
        == ('{"seed":"' + b64e(bytes(32)) + '","type":"tipline-org-secret","v":1}').encode()
    )
    assert (
        org.public.to_json()
        == ('{"public_key":"' + b64e(vk) + '","type":"tipline-org-public","v":1}').encode()
    )
    assert keys.verify_signature(vk, b"m", org.sign(b"m"))
    assert not keys.verify_signature(vk, b"n", org.sign(b"m"))
    assert not keys.verify_signature(bytes(31), b"m", org.sign(b"m"))


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"type": "tipline-org-public", "v": 1}, "key file: missing public_key"),
        ({"type": "tipline-org-secret", "v": 1, "seed": "AAAA"}, "seed must be 32 bytes"),
        (
            {"type": "tipline-org-secret", "v": 2, "seed": b64e(bytes(32))},
            "key file is not a version 1 tipline-org-secret document",
        ),
        (
            {"type": "tipline-recipient-secret", "v": 1, "label": "a", "secret_key": 5},
            "secret_key is not base64",
        ),
        (
            {
                "type": "tipline-recipient-secret",
                "v": 1,
                "label": "",
                "secret_key": b64e(bytes(32)),
            },
            "label must be 1 to 64 characters",
        ),
        (
            {
                "type": "tipline-recipient-public",
                "v": 1,
                "label": "a",
                "public_key": "AAAA",
                "x": 1,
            },
            "key file: unknown x",
        ),
        ({"v": 1}, "unknown key file type"),
        ({"type": "tipline-locked", "v": 1}, "unknown key file type"),
        ([], None),
    ],
)
def test_load_key_file_messages(doc: Any, message: str | None) -> None:
    detail = refused(KeyFileError, keys.load_key_file, json.dumps(doc).encode())
    assert detail == (message or "key file must be a JSON object")


def test_key_file_size_limit_is_inclusive() -> None:
    doc = keys.OrgPublic(bytes(32)).to_json()
    at_limit = doc[:-1] + b" " * (keys.MAX_KEY_FILE - len(doc)) + b"}"
    assert len(at_limit) == keys.MAX_KEY_FILE
    assert keys.load_key_file(at_limit) == keys.OrgPublic(bytes(32))
    assert refused(KeyFileError, keys.load_key_file, at_limit + b" ") == (
        "key file is larger than 4096 bytes"
    )


def known_locked(secret: bytes, passphrase: str, opslimit: int, memlimit: int) -> bytes:
    """A locked file made with libsodium directly, as docs/SPEC.md §2.4 describes it."""
    salt = bytes(range(16))
    key = nacl.pwhash.argon2id.kdf(
        32, passphrase.encode(), salt, opslimit=opslimit, memlimit=memlimit
    )
    box = nacl.secret.SecretBox(key).encrypt(secret, bytes(24))
    return json.dumps(
        {
            "type": "tipline-locked",
            "v": 1,
            "kdf": "argon2id13",
            "opslimit": opslimit,
            "memlimit": memlimit,
            "salt": b64e(salt),
            "box": b64e(bytes(box)),
        }
    ).encode()


@pytest.mark.parametrize(("opslimit", "memlimit"), [(1, 8 << 20), (2, 9 << 20)])
def test_unlock_known_answer(opslimit: int, memlimit: int) -> None:
    # The cost parameters read from the file are the ones the key is derived with.
    assert keys.unlock(known_locked(b"s3cret", "pass", opslimit, memlimit), "pass") == b"s3cret"


def test_lock_writes_what_it_was_given() -> None:
    doc = json.loads(keys.lock(b"s", "p", opslimit=2, memlimit=9 << 20))
    assert (doc["type"], doc["v"], doc["kdf"]) == ("tipline-locked", 1, "argon2id13")
    assert (doc["opslimit"], doc["memlimit"]) == (2, 9 << 20)
    assert len(doc) == 7


def test_lock_limits() -> None:
    assert keys.unlock(keys.lock(b"k" * keys.MAX_KEY_FILE, "p", **FAST), "p") == b"k" * 4096
    assert refused(LockedSecretError, keys.lock, b"k" * 4097, "p", **FAST) == (
        "the secret is too large to lock"
    )
    for ops in (0, 11, True):
        assert refused(LockedSecretError, keys.lock, b"s", "p", opslimit=ops, memlimit=8 << 20) == (
            "opslimit must be a whole number from 1 to 10"
        )
    for mem in ((8 << 20) - 1, (1 << 30) + 1):
        assert refused(LockedSecretError, keys.lock, b"s", "p", opslimit=1, memlimit=mem) == (
            f"memlimit must be a whole number from {8 << 20} to {1 << 30}"
        )


@pytest.fixture(scope="module")
def locked() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(keys.lock(b"secret", "p", **FAST))
    return doc


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "tipline-key"}, "locked file is not a version 1 tipline-locked document"),
        ({"extra": 1}, "locked file: unknown extra"),
        ({"kdf": "scrypt"}, "unknown key derivation"),
        ({"opslimit": "1"}, "opslimit must be a whole number from 1 to 10"),
        ({"memlimit": 1 << 31}, f"memlimit must be a whole number from {8 << 20} to {1 << 30}"),
        ({"salt": b64e(bytes(15))}, "salt must be 16 bytes"),
        ({"salt": "A"}, "salt is not canonical base64"),
        ({"box": 7}, "box is not base64"),
        ({"box": b64e(bytes(10))}, None),  # too short to be a box: the one undetailed refusal
    ],
)
def test_unlock_messages(
    locked: dict[str, Any], change: dict[str, Any], message: str | None
) -> None:
    detail = refused(LockedSecretError, keys.unlock, json.dumps({**locked, **change}).encode(), "p")
    assert detail == str(message)


def test_unlock_refuses_other_documents() -> None:
    assert refused(LockedSecretError, keys.unlock, b"[1]", "p") == (
        "locked file must be a JSON object"
    )
    assert refused(LockedSecretError, keys.unlock, b" " * (2 * 4096 + 1), "p") == (
        "locked file is larger than 8192 bytes"
    )
    with pytest.raises(LockedSecretError) as info:
        keys.unlock(keys.lock(b"s", "p", **FAST), "q")
    assert str(info.value) == "the passphrase is wrong, or the locked file was changed"


@pytest.mark.parametrize("kind", ["tipline-recipient-public", "tipline-org-public"])
def test_public_key_files_name_the_bad_field(kind: str) -> None:
    doc: dict[str, object] = {"type": kind, "v": 1, "public_key": b64e(bytes(31))}
    if kind == "tipline-recipient-public":
        doc["label"] = "A"
    assert refused(KeyFileError, keys.load_key_file, json.dumps(doc).encode()) == (
        "public_key must be 32 bytes"
    )
