"""Importing an export bundle: each envelope is checked, opened and stored, or reported.

Import is idempotent (an id already in the vault is skipped) and atomic per item: an envelope
is written under a temporary name, opened in the same pass, and only then renamed into
``items/``; before the triage database is saved, every envelope it will list is fsynced.
Killed part-way, the vault holds the database as last saved plus, at worst, envelope files it
does not list yet, which the next import of the same bundle adopts and ``verify`` reports.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..bundle import KIND_EXPORT, BundleEntry, BundleError, BundleReader, ExportItem
from ..crypto.envelope import open_envelope
from ..crypto.errors import TiplineError
from . import sealed
from .errors import ImportRefusedError
from .vault import Vault, today

DAMAGED = "its checksum does not match: it was damaged on the way"
SAVE_EVERY = 20.0  # seconds between saves of the triage database during a long import


@dataclass
class ImportReport:
    """What an import did."""

    added: list[str] = field(default_factory=list)
    duplicates: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    bundle_error: str | None = None

    @property
    def ok(self) -> bool:
        """True when every item was imported or already there."""
        return not self.failed and self.bundle_error is None


class _Tee:
    """Reads an entry, writing every byte to ``out`` on the way (the bundle reader hashes it)."""

    def __init__(self, entry: BundleEntry, out: BinaryIO) -> None:
        self.entry, self.out = entry, out
        self.size = 0

    def read(self, n: int = -1, /) -> bytes:
        data = self.entry.read(n)
        self.out.write(data)
        self.size += len(data)
        return data


def import_bundle(
    vault: Vault, src: BinaryIO, progress: Callable[[int], None] | None = None
) -> ImportReport:
    """Import every new envelope of an export bundle; return what happened to each."""
    try:
        reader = BundleReader(src, KIND_EXPORT)
    except BundleError as exc:
        raise ImportRefusedError(exc.message) from exc
    report = ImportReport()
    identities = vault.keyring.identities()
    if not identities:
        raise ImportRefusedError("this vault has no keys yet (tipline-desk keys add NAME)")
    last_save = time.monotonic()
    written: list[Path] = []  # renamed into items/ but not yet known to be on the disk

    def save() -> None:
        # Every envelope the database will list reaches the disk before the database does, so
        # even a power cut never leaves the vault listing an item it does not have.
        for path in written:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        written.clear()
        sealed.fsync_dir(vault.items)
        vault.save_store()

    try:
        for entry in reader:
            item = entry.item
            assert isinstance(item, ExportItem)
            if vault.store.has_item(item.id):
                entry.finish()
                report.duplicates += 1
            else:
                problem = _import_one(vault, entry, item, identities)
                if problem:
                    report.failed.append((item.id, problem))
                else:
                    report.added.append(item.id)
                    written.append(vault.item_file(item.id))
            if progress:
                progress(item.size)
            if time.monotonic() - last_save > SAVE_EVERY:
                save()
                last_save = time.monotonic()
    except BundleError as exc:
        report.bundle_error = exc.message
    finally:
        save()
    return report


def _import_one(
    vault: Vault, entry: BundleEntry, item: ExportItem, identities: list[bytes]
) -> str | None:
    """Store one envelope; return why not, or None when it was imported."""
    final = vault.item_file(item.id)
    tmp = sealed.temp_name(final)
    try:
        with tmp.open("xb") as out:
            tee = _Tee(entry, out)
            try:
                inner = open_envelope(tee, identities)
            except TiplineError as exc:
                # A wrong checksum says more than "could not be opened": the stick damaged it.
                return exc.message if entry.finish() else DAMAGED
            if not entry.finish():
                return DAMAGED
            if inner.kind != "submission" or inner.reply_public_key is None:
                return "it is not a submission"
            out.flush()
            # Start writing it out now, while the next item is decrypted; ``save`` waits for it.
            os.posix_fadvise(out.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        tmp.replace(final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    vault.store.add_item(
        item_id=item.id,
        source_id=item.source_id,
        designation=item.source_designation,
        reply_public_key=inner.reply_public_key,
        direction="in",
        received=item.received,
        imported=today().isoformat(),
        size=tee.size,
        digest=entry.digest,
        sealed_by=inner.sealed_by,
        message=inner.message,
        attachments=[(a.name, a.size, a.type) for a in inner.attachments],
    )
    return None
