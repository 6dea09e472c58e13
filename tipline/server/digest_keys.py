"""The public keys a journalist's daily digest is encrypted to: an age X25519 recipient or an
OpenPGP public key, checked and used with the real tools (Debian's ``age`` and ``gpg``).

This is not Tipline's own cryptography (that is libsodium, ``tipline/crypto/``): it is the
journalist's mail encryption, so it is done by the tools their mail reader understands. The
tools get bounded input, fixed arguments (a key reaches them only after it has been checked:
an age recipient by its exact form, an OpenPGP key as a fingerprint ``gpg`` itself printed),
no shell, a fixed ``PATH``, a timeout, and ``gpg`` a throwaway home folder with no agent.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..crypto.errors import TiplineError
from .i18n import _

MAX_KEY_CHARS = 64 * 1024  # an armored OpenPGP key with a few user ids is a few KiB
MAX_OUTPUT = 1 << 20
TIMEOUT_SECONDS = 30
TOOL_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
# An age X25519 recipient: "age1" and 58 characters of bech32. Nothing else is taken: other
# forms (age1yubikey1..., ssh keys) would make age look for and run a plugin program.
AGE_RECIPIENT = re.compile(r"age1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}")
PGP_BEGIN = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
PGP_END = "-----END PGP PUBLIC KEY BLOCK-----"
GPG_BASE = ("gpg", "--batch", "--no-tty", "--no-options", "--no-autostart", "--quiet")
AGE = "age"
OPENPGP = "openpgp"


class DigestKeyError(TiplineError):
    """that key cannot be used for the daily digest"""


@dataclass(frozen=True)
class DigestKey:
    """A checked key: its kind, its text as stored, and the fingerprint shown to people."""

    kind: str  # AGE or OPENPGP
    text: str
    fingerprint: str


def _run(args: list[str], data: bytes, what: str) -> bytes:
    """Run a tool with ``data`` on standard input; its output, or a ``DigestKeyError``."""
    try:
        done = subprocess.run(  # noqa: S603  # fixed arguments, no shell
            args,
            input=data,
            capture_output=True,
            env=TOOL_ENV,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError:
        raise DigestKeyError(f"{args[0]} is not installed on the server") from None
    except subprocess.TimeoutExpired:
        raise DigestKeyError(f"{args[0]} took too long to {what}") from None
    if done.returncode != 0:
        raise DigestKeyError(f"{args[0]} could not {what}")
    if len(done.stdout) > MAX_OUTPUT:
        raise DigestKeyError(f"{args[0]} wrote more than expected")
    return done.stdout


def _age_encrypt(recipient: str, plaintext: bytes) -> bytes:
    return _run(["age", "--encrypt", "--armor", "-r", recipient], plaintext, "encrypt to it")


class _GnuPGHome:
    """A throwaway gpg home folder holding one imported public key."""

    def __init__(self, armored: str) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="tipline-gpg-")
        self.home = Path(self._dir.name)  # 0700, made by mkdtemp
        try:
            self.gpg("--import", data=armored.encode())
        except BaseException:
            self.close()
            raise

    def gpg(self, *args: str, data: bytes = b"", what: str = "read it") -> bytes:
        return _run([*GPG_BASE, "--homedir", str(self.home), *args], data, what)

    def close(self) -> None:
        self._dir.cleanup()


def _one_encryption_key(home: _GnuPGHome) -> str:
    """The fingerprint of the one key in ``home``, if it can encrypt now."""
    listing = home.gpg("--with-colons", "--fixed-list-mode", "--list-keys")
    records = [line.split(":") for line in listing.decode("utf-8", "replace").splitlines()]
    primaries = [r for r in records if r[0] == "pub"]
    if len(primaries) != 1:
        raise DigestKeyError(_("paste exactly one OpenPGP public key"))
    pub = primaries[0]
    if len(pub) < 12 or pub[1] in {"r", "e", "i", "d", "n"}:
        raise DigestKeyError(_("that OpenPGP key is revoked, expired or invalid"))
    if "E" not in pub[11]:  # the key as a whole has no usable encryption (sub)key
        raise DigestKeyError(_("that OpenPGP key has no usable encryption subkey"))
    index = records.index(pub)
    fingerprint = next((r[9] for r in records[index:] if r[0] == "fpr" and len(r) > 9), "")
    if not re.fullmatch(r"[0-9A-F]{40}|[0-9A-F]{64}", fingerprint):
        raise DigestKeyError("gpg did not show the key's fingerprint")
    return fingerprint


def _openpgp_encrypt(key: DigestKey, plaintext: bytes) -> bytes:
    home = _GnuPGHome(key.text)
    try:
        return home.gpg(
            "--trust-model",
            "always",
            "--armor",
            # No compression: a compressed message's size would follow its content.
            "--compress-algo",
            "none",
            "--recipient",
            key.fingerprint,
            "--encrypt",
            data=plaintext,
            what="encrypt to it",
        )
    finally:
        home.close()


def check(text: str) -> DigestKey:
    """Check a pasted key by encrypting to it with the real tool; the key as it will be used.

    An age recipient (``age1...``) or an armored OpenPGP public key block; anything else, a
    key that is expired, revoked or cannot encrypt, or more than one key, is refused with a
    message that says which.
    """
    text = text.strip()
    if len(text) > MAX_KEY_CHARS:
        raise DigestKeyError(_("a key is at most %(num)d characters", num=MAX_KEY_CHARS))
    if AGE_RECIPIENT.fullmatch(text):
        key = DigestKey(AGE, text, text)
    elif text.startswith("age1"):
        raise DigestKeyError(
            _(
                "an age public key is one line of 62 characters, age1 and 58 more "
                "(age-keygen -y shows it; plugin and SSH recipients are not taken)"
            )
        )
    elif text.startswith(PGP_BEGIN) and text.endswith(PGP_END):
        home = _GnuPGHome(text)
        try:
            fingerprint = _one_encryption_key(home)
            # Only what encryption needs (no third-party signatures), in one normal form.
            minimal = home.gpg(
                "--armor", "--export-options", "export-minimal", "--export", fingerprint
            ).decode("ascii")
        finally:
            home.close()
        key = DigestKey(OPENPGP, minimal.strip(), fingerprint)
    else:
        raise DigestKeyError(
            _(
                "paste an age public key (age1...) or an OpenPGP public key block "
                "(%(begin)s ... %(end)s)",
                begin=PGP_BEGIN,
                end=PGP_END,
            )
        )
    encrypt(key, b"test")  # the real tool can use it, or the journalist hears why now
    return key


def encrypt(key: DigestKey, plaintext: bytes) -> bytes:
    """``plaintext`` encrypted to ``key``, ASCII-armored, by ``age`` or ``gpg``."""
    if key.kind == AGE and AGE_RECIPIENT.fullmatch(key.text):
        return _age_encrypt(key.text, plaintext)
    if key.kind == OPENPGP:
        return _openpgp_encrypt(key, plaintext)
    raise DigestKeyError("the stored key is damaged: set it again")
