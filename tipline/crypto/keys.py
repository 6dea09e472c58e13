"""Recipient keys (X25519), the org signing key (Ed25519), key ids, fingerprints, key files and
passphrase-locked secrets: docs/SPEC.md §2.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret
from nacl.public import PrivateKey
from nacl.signing import SigningKey, VerifyKey

from . import primitives
from .encoding import (
    b64d,
    b64e,
    dump_json,
    expect_header,
    expect_int,
    expect_label,
    expect_members,
    load_json,
)
from .errors import KeyFileError, LockedSecretError, TiplineError

KEY_ID_BYTES = 16
FINGERPRINT_BYTES = 20
MAX_KEY_FILE = 4096
MAX_LOCKED_FILE = 2 * MAX_KEY_FILE
MAX_LABEL = 64
# A staff account name, as the server's accounts are named (docs/SPEC.md §2.1).
ACCOUNT = re.compile(r"\A[a-z0-9][a-z0-9._-]{1,63}\Z")
SHORT_KEY_ID_HEX = 8
SALT_BYTES = nacl.pwhash.argon2id.SALTBYTES
OPSLIMIT_RANGE = (1, 10)
MEMLIMIT_RANGE = (8 << 20, 1 << 30)


def key_id(public_key: bytes) -> bytes:
    """The 16-byte id of an X25519 public key; it selects a stanza and nothing more."""
    if len(public_key) != 32:
        raise KeyFileError("a public key is 32 bytes")
    return primitives.ds(primitives.DS_KEY_ID, public_key, KEY_ID_BYTES)


def short_key_id(key_id_bytes: bytes) -> str:
    """The short key id people read and type: the key id's first 4 bytes as hex."""
    return key_id_bytes.hex()[:SHORT_KEY_ID_HEX]


def expect_account(value: object, error: type[TiplineError], what: str = "account") -> str:
    """A staff account name: 2 to 64 lowercase letters, digits, dots, dashes or underscores."""
    if not isinstance(value, str) or not ACCOUNT.match(value):
        raise error(f"{what} must be 2 to 64 lowercase letters, digits, '.', '-' or '_'")
    return value


def fingerprint(org_public_key: bytes) -> str:
    """The org key's fingerprint: 160 bits as base32, in eight groups of four letters/digits."""
    if len(org_public_key) != 32:
        raise KeyFileError("an org public key is 32 bytes")
    digest = primitives.ds(primitives.DS_FINGERPRINT, org_public_key, FINGERPRINT_BYTES)
    text = base64.b32encode(digest).decode("ascii")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


@dataclass(frozen=True)
class RecipientPublic:
    """A journalist's public key, as the manifest and the envelope name it, with the staff
    account it belongs to (None for keys made before accounts were recorded)."""

    public_key: bytes
    label: str
    account: str | None = None

    @property
    def key_id(self) -> bytes:
        """The key id (docs/SPEC.md §2.1)."""
        return key_id(self.public_key)

    def to_json(self) -> bytes:
        """The public key file."""
        return dump_json(
            {
                "type": "tipline-recipient-public",
                "v": 1,
                "label": self.label,
                "public_key": b64e(self.public_key),
            }
        )


@dataclass(frozen=True, repr=False)
class RecipientSecret:
    """A journalist's secret key; ``repr`` never shows the key."""

    secret_key: bytes
    label: str

    @classmethod
    def generate(cls, label: str) -> RecipientSecret:
        """A fresh X25519 keypair from libsodium's CSPRNG."""
        expect_label(label, MAX_LABEL, KeyFileError, "label")
        return cls(bytes(PrivateKey.generate()), label)

    @property
    def public(self) -> RecipientPublic:
        """The matching public key."""
        pk = bytes(PrivateKey(self.secret_key).public_key)
        return RecipientPublic(pk, self.label)

    def __repr__(self) -> str:
        return f"RecipientSecret(label={self.label!r}, key_id={self.public.key_id.hex()})"

    def to_json(self) -> bytes:
        """The secret key file; the desk stores it only locked (``lock``)."""
        return dump_json(
            {
                "type": "tipline-recipient-secret",
                "v": 1,
                "label": self.label,
                "secret_key": b64e(self.secret_key),
            }
        )


@dataclass(frozen=True)
class OrgPublic:
    """The org's Ed25519 verification key, configured on the server at install time."""

    public_key: bytes

    @property
    def fingerprint(self) -> str:
        """The human fingerprint a source can compare (docs/SPEC.md §2.2)."""
        return fingerprint(self.public_key)

    def to_json(self) -> bytes:
        """The org public key file."""
        return dump_json(
            {"type": "tipline-org-public", "v": 1, "public_key": b64e(self.public_key)}
        )


@dataclass(frozen=True, repr=False)
class OrgSecret:
    """The org's Ed25519 signing key (its 32-byte seed); held offline by an admin."""

    seed: bytes

    @classmethod
    def generate(cls) -> OrgSecret:
        """A fresh Ed25519 signing key."""
        return cls(bytes(SigningKey.generate()))

    @property
    def public(self) -> OrgPublic:
        """The matching verification key."""
        return OrgPublic(bytes(SigningKey(self.seed).verify_key))

    def sign(self, message: bytes) -> bytes:
        """A detached Ed25519 signature."""
        return SigningKey(self.seed).sign(message).signature

    def __repr__(self) -> str:
        return f"OrgSecret(fingerprint={self.public.fingerprint!r})"

    def to_json(self) -> bytes:
        """The org secret key file; the desk stores it only locked (``lock``)."""
        return dump_json({"type": "tipline-org-secret", "v": 1, "seed": b64e(self.seed)})


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``message``."""
    try:
        VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        return False
    return True


def verify_derived(
    signing_key: bytes,
    domain: bytes,
    body: bytes,
    signature: bytes,
    error: type[TiplineError],
    bad_signature: str,
) -> bytes:
    """The X25519 key derived from the Ed25519 ``signing_key`` (``crypto_sign_ed25519_pk_to_
    curve25519``), once ``signature`` verifies over ``domain || body`` under it (a key request,
    SPEC §3.1, or a signed triage update, §8.5). The caller then checks the derived key against
    what its document names: that is the proof that the signer holds the secret of that X25519
    key. Each failure is ``error`` with the caller's words, but for a signing key that verifies
    yet does not convert, which both formats word alike."""
    if not verify_signature(signing_key, domain + body, signature):
        raise error(bad_signature)
    try:
        return bytes(VerifyKey(signing_key).to_curve25519_public_key())
    except (nacl.exceptions.CryptoError, ValueError) as exc:
        raise error("its signing key is not a valid key") from exc


KeyFile = RecipientPublic | RecipientSecret | OrgPublic | OrgSecret


def load_key_file(data: bytes) -> KeyFile:
    """Parse any of the four key files, checking every field and size."""
    obj = load_json(data, MAX_KEY_FILE, KeyFileError, "key file")
    kind = obj.get("type")
    if kind == "tipline-recipient-public":
        _expect(obj, kind, {"label", "public_key"})
        return RecipientPublic(_key(obj["public_key"], "public_key"), _label(obj))
    if kind == "tipline-recipient-secret":
        _expect(obj, kind, {"label", "secret_key"})
        return RecipientSecret(_key(obj["secret_key"], "secret_key"), _label(obj))
    if kind == "tipline-org-public":
        _expect(obj, kind, {"public_key"})
        return OrgPublic(_key(obj["public_key"], "public_key"))
    if kind == "tipline-org-secret":
        _expect(obj, kind, {"seed"})
        return OrgSecret(_key(obj["seed"], "seed"))
    raise KeyFileError("unknown key file type")


def _expect(obj: dict[str, Any], kind: str, members: set[str]) -> None:
    expect_header(obj, kind, KeyFileError, "key file")
    expect_members(obj, members | {"type", "v"}, KeyFileError, "key file")


def _key(value: object, what: str) -> bytes:
    return b64d(value, 32, KeyFileError, what)


def _label(obj: dict[str, Any]) -> str:
    return expect_label(obj["label"], MAX_LABEL, KeyFileError, "label")


def _passphrase_key(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    normalised = unicodedata.normalize("NFKC", passphrase).encode("utf-8")
    return nacl.pwhash.argon2id.kdf(32, normalised, salt, opslimit=opslimit, memlimit=memlimit)


def lock(
    secret: bytes,
    passphrase: str,
    opslimit: int = nacl.pwhash.argon2id.OPSLIMIT_MODERATE,
    memlimit: int = nacl.pwhash.argon2id.MEMLIMIT_MODERATE,
) -> bytes:
    """Seal ``secret`` under a passphrase: Argon2id, then XSalsa20-Poly1305 (secretbox)."""
    expect_int(opslimit, *OPSLIMIT_RANGE, LockedSecretError, "opslimit")
    expect_int(memlimit, *MEMLIMIT_RANGE, LockedSecretError, "memlimit")
    if len(secret) > MAX_KEY_FILE:
        raise LockedSecretError("the secret is too large to lock")
    salt = primitives.random_bytes(SALT_BYTES)
    key = _passphrase_key(passphrase, salt, opslimit, memlimit)
    box = bytes(nacl.secret.SecretBox(key).encrypt(secret))
    return dump_json(
        {
            "type": "tipline-locked",
            "v": 1,
            "kdf": "argon2id13",
            "opslimit": opslimit,
            "memlimit": memlimit,
            "salt": b64e(salt),
            "box": b64e(box),
        }
    )


def unlock(data: bytes, passphrase: str) -> bytes:
    """Open a locked secret. Cost parameters are bounded before any work is done."""
    obj = load_json(data, MAX_LOCKED_FILE, LockedSecretError, "locked file")
    expect_header(obj, "tipline-locked", LockedSecretError, "locked file")
    expect_members(
        obj,
        {"type", "v", "kdf", "opslimit", "memlimit", "salt", "box"},
        LockedSecretError,
        "locked file",
    )
    if obj["kdf"] != "argon2id13":
        raise LockedSecretError("unknown key derivation")
    opslimit = expect_int(obj["opslimit"], *OPSLIMIT_RANGE, LockedSecretError, "opslimit")
    memlimit = expect_int(obj["memlimit"], *MEMLIMIT_RANGE, LockedSecretError, "memlimit")
    salt = b64d(obj["salt"], SALT_BYTES, LockedSecretError, "salt")
    box = b64d(obj["box"], None, LockedSecretError, "box")
    key = _passphrase_key(passphrase, salt, opslimit, memlimit)
    try:
        return bytes(nacl.secret.SecretBox(key).decrypt(box))
    except (nacl.exceptions.CryptoError, ValueError) as exc:
        raise LockedSecretError() from exc
