"""Keeping a vault sound: verify, rekey (re-wrap stanzas to the current keys), backup, restore."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from ..bundle import MAX_BUNDLE_ITEM
from ..crypto import envelope
from ..crypto import format as fmt
from ..crypto.errors import TiplineError
from ..crypto.keys import key_id
from . import sealed
from .errors import BackupError, KeyringError, UsageError
from .keyring import MAX_KEYRING
from .outgoing import file_digest, replace_hashed
from .vault import MAX_TRIAGE, MAX_VAULT_KEY, Vault

Progress = Callable[[int], None] | None
BACKUP_FILES = ("vault.json", "vault.key", "keyring.sealed", "triage.sealed")
MAX_BACKUP_MEMBERS = 2 * 10**6
MEMBER_LIMITS = {
    "vault.json": 4096,
    "vault.key": MAX_VAULT_KEY,
    "keyring.sealed": 2 * MAX_KEYRING,
    "triage.sealed": 2 * MAX_TRIAGE,
}
_MEMBER = re.compile(
    r"\A(?:vault\.json|vault\.key|keyring\.sealed|triage\.sealed|items|"
    r"items/[0-9a-f]{32}\.env)\Z"
)


@dataclass
class VerifyReport:
    """What ``verify`` found."""

    checked: int = 0
    problems: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)


def verify(
    vault: Vault, deep: bool = False, repair: bool = False, progress: Progress = None
) -> VerifyReport:
    """Check that every listed envelope is present and unchanged (``deep``: and opens).

    The keyring and the triage database were authenticated when the vault was opened. Envelope
    files the database does not list (left by an interrupted import) are reported, and deleted
    with ``repair``; the next import of their bundle brings them back properly.
    """
    report = VerifyReport()
    stored = vault.stored_item_files()
    identities = vault.keyring.identities()
    for item_id in vault.store.all_ids():
        report.checked += 1
        path = vault.item_file(item_id)
        if item_id not in stored:
            report.problems.append(f"item {item_id}: its envelope is missing")
            continue
        size, digest = file_digest(path)
        if digest != vault.store.digest(item_id):
            report.problems.append(f"item {item_id}: its envelope was changed or damaged")
        elif deep:
            try:
                with path.open("rb") as src:
                    envelope.open_envelope(src, identities)
            except TiplineError as exc:
                report.problems.append(f"item {item_id}: {exc.message}")
        if progress:
            progress(size)
    listed = set(vault.store.all_ids())
    report.unlisted = sorted(stored - listed)
    if repair:
        for item_id in report.unlisted:
            vault.item_file(item_id).unlink()
    return report


def rekey(vault: Vault, progress: Progress = None) -> int:
    """Re-wrap every stored envelope to the vault's active keys (replies: plus the source's
    reply key). Only stanzas change; the payload is copied unread. Returns how many changed.
    """
    active = [r.public.public_key for r in vault.keyring.active()]
    if not active:
        raise KeyringError("there is no active key to re-wrap to")
    identities = vault.keyring.identities()
    changed = 0
    for item_id in vault.store.all_ids():
        item = vault.store.get(item_id)
        recipients = list(active)
        if item.direction == "out":
            reply_pk = vault.store.resolve_source(item.source_id)[2]
            if reply_pk is not None:
                recipients.insert(0, reply_pk)
        path = vault.item_file(item_id)
        with path.open("rb") as src:
            header = fmt.parse_header(src.read(fmt.MAX_HEADER_SIZE))
        wanted = {key_id(pk) for pk in recipients}
        if set(header.key_ids) == wanted:
            continue
        with path.open("rb") as src:
            rewrap = partial(envelope.rewrap, src, identities=identities, recipients=recipients)
            size, digest = replace_hashed(path, rewrap)
        vault.store.set_digest(item_id, digest, size)
        vault.save_store()  # after each file, so the database always matches the disk
        changed += 1
        if progress:
            progress(1)
    return changed


def backup(vault: Vault, out: Path) -> int:
    """Write the whole vault, still encrypted, as one tar file; returns how many items."""
    if out.exists():
        raise UsageError(f"{out} already exists")
    tmp = sealed.temp_name(out)
    ids = sorted(vault.store.all_ids())
    try:
        with tarfile.open(tmp, "x", format=tarfile.PAX_FORMAT) as tar:
            for name in BACKUP_FILES:
                tar.add(vault.path / name, arcname=name, recursive=False)
            for item_id in ids:
                tar.add(vault.item_file(item_id), arcname=f"items/{item_id}.env")
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        tmp.replace(out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return len(ids)


def restore(backup_file: Path, target: Path) -> None:
    """Unpack a backup into a new folder, refusing any member that is not a vault file.

    Nothing in the archive is trusted as a path: only the fixed vault names are accepted, as
    regular files, each once. Open the result with its passphrase and run ``verify``.
    """
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty")
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    (target / "items").mkdir(mode=0o700, exist_ok=True)
    seen: set[str] = set()
    try:
        _unpack(backup_file, target, seen)
    except BaseException:
        shutil.rmtree(target / "items")
        for name in BACKUP_FILES:
            with contextlib.suppress(FileNotFoundError):
                (target / name).unlink()
        raise
    sealed.fsync_dir(target / "items")
    sealed.fsync_dir(target)


def _unpack(backup_file: Path, target: Path, seen: set[str]) -> None:
    try:
        with tarfile.open(backup_file, "r:") as tar:
            for count, member in enumerate(tar):
                if count > MAX_BACKUP_MEMBERS:
                    raise BackupError("the backup has too many entries")
                name = member.name
                if not _MEMBER.match(name) or name in seen:
                    raise BackupError(f"the backup holds an unexpected entry {name[:80]!r}")
                seen.add(name)
                if name == "items":
                    if not member.isdir():
                        raise BackupError("items is not a folder in the backup")
                    continue
                if not member.isfile():
                    raise BackupError(f"{name} is not a regular file in the backup")
                limit = MEMBER_LIMITS.get(name, MAX_BUNDLE_ITEM)
                if member.size > limit:
                    raise BackupError(f"{name} in the backup is larger than {limit} bytes")
                src = tar.extractfile(member)
                if src is None:
                    raise BackupError(f"{name} cannot be read")
                with src, (target / name).open("xb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
                    os.fsync(dst.fileno())
    except (tarfile.TarError, EOFError) as exc:
        raise BackupError("the backup file is damaged or not a backup") from exc
    missing = [n for n in BACKUP_FILES if n not in seen]
    if missing:
        raise BackupError(f"the backup lacks {', '.join(missing)}")
