"""Importing an export bundle: each envelope is checked, opened and stored, or reported.

Import is idempotent (an id already in the vault is skipped) and atomic per item: an envelope
is written under a temporary name, opened in the same pass, and only then renamed into
``items/``; before the triage database is saved, every envelope it will list is fsynced.
Killed part-way, the vault holds the database as last saved plus, at worst, envelope files it
does not list yet, which the next import of the same bundle adopts and ``verify`` reports.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, cast

from ..bundle import KIND_EXPORT, BundleEntry, BundleError, BundleReader, ExportItem, TriageItem
from ..crypto.envelope import open_envelope
from ..crypto.errors import TiplineError
from . import sealed, triage
from .errors import ImportRefusedError
from .provenance import Fingerprint
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
    triage: list[str] = field(default_factory=list)  # one outcome line per triage update

    @property
    def ok(self) -> bool:
        """True when every item was imported or already there."""
        return not self.failed and self.bundle_error is None


class _Store:
    """Writes an envelope into the vault, starting the disk write of each few MiB at once.

    Starting write-back here (posix_fadvise DONTNEED starts it and does not wait) puts its cost
    on the writing thread, while the next block is decrypted; ``save`` later waits for it all
    with fsync before the database lists the item.
    """

    STEP = 4 << 20

    def __init__(self, out: BinaryIO) -> None:
        self.out, self.written, self.started = out, 0, 0
        self.envelope = Fingerprint()  # SHA-256 of the envelope as received (provenance.py)

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        n = self.out.write(data)
        self.envelope.write(memoryview(data)[:n])  # a raw file may take only part of it
        self.written += n
        if self.written - self.started >= self.STEP:
            self.start_writeback()
        return n

    def start_writeback(self) -> None:
        """Start writing out what was written since the last call. Only that range: advising
        the whole file would also drop the pages already on disk from the cache."""
        if self.written > self.started:
            os.posix_fadvise(
                self.out.fileno(),
                self.started,
                self.written - self.started,
                os.POSIX_FADV_DONTNEED,
            )
            self.started = self.written


def spare_core() -> bool:
    """True when this machine has a second core for the import's helper threads.

    With one, reading (and checksumming) the bundle on a thread of its own only takes turns
    with decrypting. With two or more, the helper threads pay even when other programs keep
    the machine busy: each thread gets its share of the cores (bench/desk.py, docs/DESK.md §10:
    at a load average of 6 to 8 on 2 cores, 256 MiB imported in 1.6 to 2.2 s with them, 2.5 to
    3.3 s without). An earlier version also asked for an idle core by the load average, and on
    a busy machine ran everything on one thread.
    """
    return len(os.sched_getaffinity(0)) >= 2


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
        raise ImportRefusedError("this vault has no keys yet (tipline-desk keys request)")
    last_save = time.monotonic()
    read_ahead = spare_core()
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

    held = triage.held_manifest(vault.store, vault.keyring.org_public, today(), strict=False)
    writers = triage.writers(vault.store, held)
    try:
        for entry in reader:
            item = entry.item
            if isinstance(item, TriageItem):
                report.triage.append(_triage_one(vault, entry, identities, writers))
            elif not isinstance(item, ExportItem):
                raise BundleError("an export bundle holds submissions and triage updates only")
            elif vault.store.has_item(item.id):
                entry.finish()
                report.duplicates += 1
            else:
                problem = _import_one(vault, entry, item, identities, read_ahead)
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
        report.triage += triage.apply_parked(vault.store, writers)  # for items just imported
    except BundleError as exc:
        report.bundle_error = exc.message
    finally:
        save()
    return report


def _triage_one(
    vault: Vault,
    entry: BundleEntry,
    identities: list[bytes],
    writers: triage.Writers,
) -> str:
    """Open and apply one triage update; its one-line outcome."""
    head = f"triage update {entry.item.id[:12]}"
    data = entry.read()
    if not entry.finish():
        return f"{head}: {DAMAGED}: nothing changed"
    try:
        inner = open_envelope(io.BytesIO(data), identities)
        if inner.kind != "triage":
            return f"{head}: refused: it is not a triage update: nothing changed"
    except TiplineError as exc:
        return f"{head}: refused: {exc.message}: nothing changed"
    return triage.receive(vault.store, entry.item.id, inner.message, writers)


def _import_one(
    vault: Vault,
    entry: BundleEntry,
    item: ExportItem,
    identities: list[bytes],
    read_ahead: bool,
) -> str | None:
    """Store one envelope; return why not, or None when it was imported."""
    final = vault.item_file(item.id)
    tmp = sealed.temp_name(final)
    try:
        with tmp.open("xb", buffering=0) as out:
            try:
                # One pass over the bytes: the bundle entry is read (and hashed), decrypted,
                # and written, still sealed, to the vault. With two cores, one helper thread
                # reads ahead and another writes behind while this one decrypts.
                store = _Store(out)
                prints: list[Fingerprint] = []  # each attachment's SHA-256, as it streams past

                def sink(_index: int, _attachment: object) -> BinaryIO:
                    prints.append(Fingerprint())
                    return cast(BinaryIO, prints[-1])

                inner = open_envelope(entry, identities, sink, copy_to=store, read_ahead=read_ahead)
            except TiplineError as exc:
                # A wrong checksum says more than "could not be opened": the stick damaged it.
                return exc.message if entry.finish() else DAMAGED
            if not entry.finish():
                return DAMAGED
            if inner.kind != "submission" or inner.reply_public_key is None:
                return "it is not a submission"
            size = out.tell()
            store.start_writeback()  # the rest of it
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
        size=size,
        digest=entry.digest,
        sealed_by=inner.sealed_by,
        message=inner.message,
        attachments=[(a.name, a.size, a.type) for a in inner.attachments],
    )
    vault.store.add_fingerprints(
        item.id,
        {0: store.envelope.digest(), **{n: p.digest() for n, p in enumerate(prints, 1)}},
    )
    return None
