"""Desk fixtures: a vault with one journalist key, and export bundles made as the server would."""

from __future__ import annotations

import datetime
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import nacl.utils
import pytest
from click.testing import CliRunner, Result

from tipline.bundle import KIND_EXPORT, ExportItem, write_bundle
from tipline.crypto import envelope
from tipline.crypto.codename import derive, generate
from tipline.crypto.inner import Attachment, Inner
from tipline.desk.cli import cli
from tipline.desk.vault import Vault, today
from tipline.wordlist import load_wordlist

PASS = "correct horse battery"


@dataclass
class Source:
    """A source as the server knows it, with the reply secret only the source could derive."""

    id: str
    designation: str
    reply_public: bytes
    reply_secret: bytes


def make_source(designation: str = "tidy otter", source_id: str | None = None) -> Source:
    """A new source; pass ``source_id`` (32 hex digits) where it must not change between runs."""
    keys = derive(generate(load_wordlist()))
    return Source(
        source_id or nacl.utils.random(16).hex(),
        designation,
        keys.reply_public_key,
        keys.reply_secret_key,
    )


def seal_submission(
    recipients: list[bytes],
    source: Source,
    message: str,
    files: Sequence[tuple[str, bytes] | tuple[str, bytes, str]] = (),
    sealed_by: str = "browser",
) -> bytes:
    """``files`` are (name, bytes) or (name, bytes, claimed type; text/plain if not given)."""
    inner = Inner(
        "submission",
        sealed_by,
        message,
        source.reply_public,
        tuple(Attachment(f[0], len(f[1]), f[2] if len(f) > 2 else "text/plain") for f in files),
    )
    out = io.BytesIO()
    envelope.seal(out, recipients, inner, [io.BytesIO(f[1]) for f in files])
    return out.getvalue()


@dataclass
class Sub:
    """One submission for a bundle: its listing and its envelope."""

    item: ExportItem
    data: bytes


def submission(
    recipients: list[bytes],
    source: Source,
    message: str,
    files: Sequence[tuple[str, bytes] | tuple[str, bytes, str]] = (),
    received: str = "2026-11-20",
    item_id: str | None = None,
) -> Sub:
    data = seal_submission(recipients, source, message, files)
    item = ExportItem(
        item_id or nacl.utils.random(16).hex(), source.id, source.designation, received, len(data)
    )
    return Sub(item, data)


def bundle_bytes(subs: list[Sub]) -> bytes:
    by_id = {s.item.id: s.data for s in subs}
    out = io.BytesIO()
    write_bundle(out, KIND_EXPORT, [s.item for s in subs], lambda i: io.BytesIO(by_id[i.id]))
    return out.getvalue()


def create_vault(path: Path, added: datetime.date | None = None) -> Path:
    """A vault with one journalist key, added today unless ``added`` fixes the date."""
    vault = Vault.create(path, PASS, kdf="test")
    vault.keyring.add("Alice Reporter", added or today())
    vault.save_keyring()
    vault.close()
    return path


@pytest.fixture
def vault_dir(tmp_path: Path) -> Path:
    return create_vault(tmp_path / "vault")


def public_keys(vault_dir: Path) -> list[bytes]:
    with Vault.open(vault_dir, PASS) as vault:
        return [r.secret.public.public_key for r in vault.keyring.active()]


Run = Callable[..., Result]


@pytest.fixture
def run(vault_dir: Path) -> Run:
    """Run `tipline-desk --vault VAULT ARGS...` with the passphrase on standard input."""

    def go(*args: str, input: str | None = None, code: int = 0) -> Result:
        result = CliRunner().invoke(
            cli, ["--vault", str(vault_dir), *args], input=PASS + "\n" if input is None else input
        )
        assert result.exit_code == code, result.output
        return result

    return go
