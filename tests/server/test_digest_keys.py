"""The keys a digest is encrypted to, checked with the real ``age`` and ``gpg`` when a
journalist sets one: good keys are taken (and encrypt to what their secret key opens), every
other kind is refused with a message that says why."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tipline.server import digest, digest_keys

from .mail_fixtures import AgeIdentity, GpgIdentity, age_identity, gpg_identity, gpg_key, tool

__all__ = ["age_identity", "gpg_identity"]  # fixtures, used by name below


def test_an_age_key_is_taken_and_used(age_identity: AgeIdentity) -> None:
    key = digest_keys.check(f"  {age_identity.recipient}\n")
    assert (key.kind, key.text, key.fingerprint) == ("age", age_identity.recipient, key.text)
    text = digest.plaintext(digest.datetime.date(2030, 1, 2), "", digest.Counts(4, 5))
    assert age_identity.decrypt(digest_keys.encrypt(key, text)) == text


def test_an_openpgp_key_is_taken_in_its_minimal_form(gpg_identity: GpgIdentity) -> None:
    key = digest_keys.check(gpg_identity.public_key)
    assert key.kind == "openpgp" and key.fingerprint == gpg_identity.fingerprint
    assert key.text.startswith(digest_keys.PGP_BEGIN) and key.text.endswith(digest_keys.PGP_END)
    ciphertext = digest_keys.encrypt(key, b"x" * 1024)
    assert ciphertext.startswith(b"-----BEGIN PGP MESSAGE-----")
    assert gpg_identity.decrypt(ciphertext) == b"x" * 1024
    # Not compressed: a message of one repeated byte would otherwise shrink to almost nothing.
    assert len(ciphertext) > 1024


def test_the_body_is_padded_to_the_size_fixed_for_the_key(age_identity: AgeIdentity) -> None:
    key = digest_keys.check(age_identity.recipient)
    size = digest.nominal_body_size(key)
    text = digest.plaintext(digest.datetime.date(2030, 1, 2), "", digest.Counts(0, 0))
    body = digest.body(key, size, text)
    assert len(body) == size and body.rstrip(" \n").endswith("-----END AGE ENCRYPTED FILE-----")
    assert age_identity.decrypt(body.encode()) == text  # age skips the padding lines
    with pytest.raises(digest.DigestError, match="larger than its fixed size"):
        digest.body(key, size - digest.BODY_SLACK - 1, text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "paste an age public key"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO", "paste an age public key"),
        ("age1yubikey1qwertyqwertyqwerty", "plugin and SSH recipients are not taken"),
        ("age1" + "b" * 58, "age1 and 58 more"),  # "b" is not in bech32's alphabet
        ("age1" + "q" * 57, "age1 and 58 more"),
        (
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n-----END PGP PUBLIC KEY BLOCK-----",
            "gpg could not read it",
        ),
        ("x" * (digest_keys.MAX_KEY_CHARS + 1), "at most"),
    ],
)
def test_what_is_not_a_key_is_refused(text: str, message: str) -> None:
    with pytest.raises(digest_keys.DigestKeyError, match=message):
        digest_keys.check(text)


def test_an_age_key_of_the_right_form_that_age_refuses(age_identity: AgeIdentity) -> None:
    """A well-formed string whose checksum is wrong: the real tool is the judge."""
    broken = age_identity.recipient[:-1] + ("q" if age_identity.recipient[-1] != "q" else "p")
    with pytest.raises(digest_keys.DigestKeyError, match="age could not encrypt to it"):
        digest_keys.check(broken)


def test_openpgp_keys_that_cannot_encrypt_are_refused(tmp_path: Path) -> None:
    signing_only = gpg_key(tmp_path / "sign", "Sign Only <s@example.org>", "ed25519", "sign")
    expired = gpg_key(
        tmp_path / "old", "Old <o@example.org>", when="20200101T000000"
    )  # made in 2020, for one year
    two = gpg_key(tmp_path / "two", "Two <t@example.org>")
    done = subprocess.run(
        [tool("gpg"), "--batch", "--homedir", str(two.home), "--import"],
        input=expired.public_key.encode(),
        capture_output=True,
    )
    assert done.returncode == 0, done.stderr
    both = subprocess.run(
        [tool("gpg"), "--batch", "--homedir", str(two.home), "--armor", "--export"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    secret = subprocess.run(
        [
            tool("gpg"),
            "--batch",
            "--homedir",
            str(two.home),
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--armor",
            "--export-secret-keys",
            two.fingerprint,
        ],
        capture_output=True,
        check=True,
    ).stdout.decode()
    try:
        for text, message in [
            (signing_only.public_key, "no usable encryption subkey"),
            (expired.public_key, "revoked, expired or invalid"),
            (both, "exactly one OpenPGP public key"),
            (secret, "paste an age public key"),  # a secret key block is not taken at all
        ]:
            with pytest.raises(digest_keys.DigestKeyError, match=message):
                digest_keys.check(text)
        # The control: the second key alone is fine.
        assert digest_keys.check(two.public_key).fingerprint == two.fingerprint
    finally:
        for home in ("sign", "old", "two"):
            subprocess.run(
                [tool("gpgconf"), "--homedir", str(tmp_path / home), "--kill", "all"], check=False
            )


def test_no_gpg_agent_is_left_behind(gpg_identity: GpgIdentity) -> None:
    """Checking and encrypting use a throwaway home with --no-autostart: no agent starts."""
    before = _agents()
    digest_keys.encrypt(digest_keys.check(gpg_identity.public_key), b"x")
    assert not [a for a in _agents() - before if "tipline-gpg-" in a]


def _agents() -> set[str]:
    done = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True)
    return {line for line in done.stdout.splitlines() if "gpg-agent" in line}
