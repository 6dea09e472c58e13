"""Exporting an item's attachments as safe copies, each with a provenance sidecar.

Three kinds of copy (docs/DESK.md explains them for journalists):

- a *viewing copy*, the default: documents and images are turned into pixels in the sandbox and
  rebuilt outside it (a PDF, or a PNG for an image); text becomes a plain UTF-8 text file with
  escape sequences and control characters removed; sound and video cannot be turned into pixels,
  so they get the publication treatment, with a warning that they were not converted;
- a *publication copy*: the original format with its metadata removed by mat2 in the sandbox;
- the *original*, exactly as the source sent it, only when asked for by name.

The work is split so that the TUI can run the slow part in a worker thread: ``prepare`` reads
what it needs from the vault (in the vault's thread), ``export`` opens the envelope, converts and
writes (in any thread, touching nothing shared), and ``record`` stores fingerprints that an older
desk did not take at import (in the vault's thread again). The original never touches the disk
for a safe copy: it goes from the envelope straight into the sandbox's memory.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, cast

import nacl.utils

from ...crypto.envelope import open_envelope
from ...crypto.errors import TiplineError
from ...crypto.inner import Attachment
from ..errors import ExportRefusedError
from ..provenance import Fingerprint, Provenance, file_sha256, write_sidecar
from ..text import safe_filename
from ..vault import Vault, today
from .converter import Converter, Job
from .errors import CancelledError, ConversionError
from .sniff import HEAD, Kind, disagreement, sniff
from .text_copy import TextCopy

COPIES = ("viewing", "publication", "original")
ORIGINAL_WARNING = (
    "this is the original file exactly as the source sent it: it can attack the program that "
    "opens it, and its metadata may identify the source"
)
MEDIA_WARNING = (
    "sound and video are not converted: this is the original with its metadata removed, and it "
    "can still attack the player that opens it"
)


@dataclass(frozen=True)
class Source:
    """What an export needs from the vault, read in the vault's own thread."""

    item_id: str
    envelope: Path
    identities: tuple[bytes, ...]
    recorded: dict[int, bytes]  # fingerprints taken at import: 0 the envelope, n attachment n


@dataclass(frozen=True)
class Progress:
    """Where an export is: attachment ``number`` of ``count``, page ``done`` of ``pages``."""

    number: int
    count: int
    name: str
    done: int
    pages: int


@dataclass
class Exported:
    """One attachment's outcome: the copy written and its sidecar, or why there is none."""

    number: int
    name: str
    size: int
    claimed_type: str
    sha256: str
    content: str = ""
    copy: str = ""
    path: Path | None = None
    sidecar: Path | None = None
    notes: list[str] = field(default_factory=list)
    problem: str | None = None


@dataclass
class ExportReport:
    """What an export wrote."""

    item_id: str
    envelope_sha256: str | None
    attachments: list[Exported] = field(default_factory=list)
    message: Path | None = None
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        """True when every attachment asked for was written."""
        return not self.cancelled and all(a.problem is None for a in self.attachments)


def prepare(vault: Vault, item_id: str) -> Source:
    """Gather what ``export`` needs (call it in the thread that owns the vault)."""
    return Source(
        item_id,
        vault.item_file(item_id),
        tuple(vault.keyring.identities()),
        vault.store.fingerprints(item_id),
    )


def record(vault: Vault, report: ExportReport) -> None:
    """Keep the attachments' fingerprints of an item imported before the desk took them."""
    known = vault.store.fingerprints(report.item_id)
    fresh = {a.number: bytes.fromhex(a.sha256) for a in report.attachments if a.number not in known}
    if fresh:
        vault.store.add_fingerprints(report.item_id, fresh)
        vault.save_store()


@dataclass
class Options:
    """What to export, and how."""

    copy: str = "viewing"
    ocr: bool = False
    with_message: bool = False
    only: int | None = None  # one attachment by number, or all


def export(
    source: Source,
    folder: Path,
    converter: Converter,
    options: Options,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> ExportReport:
    """Write the copies asked for into ``folder``; never overwrites, never leaves half a file."""
    if options.copy not in COPIES:
        raise ExportRefusedError(f"the kind of copy is one of {', '.join(COPIES)}")
    if not folder.is_dir():
        raise ExportRefusedError(f"{folder} is not a folder")
    cancel = cancel or threading.Event()
    attachments, message, prints = _fingerprint(source)
    envelope = source.recorded.get(0)
    report = ExportReport(source.item_id, envelope.hex() if envelope else None)
    if options.only is not None and not 1 <= options.only <= len(attachments):
        raise ExportRefusedError(f"this item has no attachment {options.only}")
    work = folder / f".tipline-partial-{nacl.utils.random(8).hex()}"
    work.mkdir(mode=0o700)
    try:
        if options.with_message:
            report.message = _place(work, folder, f"{source.item_id[:8]}-message.txt", message)
        for index, attachment in enumerate(attachments):
            if options.only is not None and index + 1 != options.only:
                continue
            if cancel.is_set():
                report.cancelled = True
                break
            result = Exported(
                index + 1,
                attachment.name,
                attachment.size,
                attachment.type,
                prints[index].digest().hex(),
            )
            report.attachments.append(result)
            writer = _Writer(source, folder, work, converter, options, cancel, report)
            try:
                writer.one(index, attachment, prints[index], result, progress, len(attachments))
            except CancelledError:
                report.cancelled = True
                break
            except ConversionError as exc:
                result.problem = exc.message
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


def _fingerprint(source: Source) -> tuple[tuple[Attachment, ...], str, list[Fingerprint]]:
    """Open the envelope once: every attachment's SHA-256 and first bytes, checked against the
    fingerprints taken at import."""
    prints: list[Fingerprint] = []

    def sink(index: int, attachment: Attachment) -> BinaryIO:
        prints.append(Fingerprint(keep=HEAD))
        return cast(BinaryIO, prints[-1])

    try:
        with source.envelope.open("rb") as src:
            inner = open_envelope(src, source.identities, sink)
    except TiplineError as exc:
        raise ExportRefusedError(exc.message) from exc
    for number, digest in source.recorded.items():
        if number and (number > len(prints) or prints[number - 1].digest() != digest):
            raise ExportRefusedError(
                f"attachment {number} is not the file fingerprinted at import (the vault was "
                "changed outside the desk)"
            )
    return inner.attachments, inner.message, prints


def _place(work: Path, folder: Path, name: str, text: str) -> Path:
    tmp = work / "message"
    tmp.write_text(text, encoding="utf-8")
    return _link(tmp, folder, name)


def _link(tmp: Path, folder: Path, name: str) -> Path:
    """Give a finished file its name in ``folder`` without ever replacing an existing file."""
    target = folder / name
    n = 2
    while True:
        try:
            os.link(tmp, target)  # unlike rename, never replaces what is there
            break
        except FileExistsError:
            stem, dot, ext = name.rpartition(".")
            target = folder / (f"{stem} ({n}).{ext}" if dot and stem else f"{name} ({n})")
            n += 1
    tmp.unlink()
    return target


class _Writer:
    """Writes one attachment's copy and sidecar."""

    def __init__(
        self,
        source: Source,
        folder: Path,
        work: Path,
        converter: Converter,
        options: Options,
        cancel: threading.Event,
        report: ExportReport,
    ) -> None:
        self.source, self.folder, self.work = source, folder, work
        self.converter, self.options, self.cancel = converter, options, cancel
        self.report = report

    def feed(self, index: int, expected: bytes) -> Callable[[IO[bytes]], None]:
        """Decrypt attachment ``index`` into a file object, checking it is the fingerprinted one."""

        def feed(target: IO[bytes]) -> None:
            check = Fingerprint(then=target)
            to = cast(BinaryIO, check)
            try:
                with self.source.envelope.open("rb") as src:
                    open_envelope(
                        src,
                        self.source.identities,
                        lambda i, _a: to if i == index else None,
                        write_behind=False,
                    )
            except TiplineError as exc:
                raise ConversionError(exc.message) from exc
            if check.digest() != expected:
                raise ConversionError("it changed since it was fingerprinted")

        return feed

    def one(
        self,
        index: int,
        attachment: Attachment,
        print_: Fingerprint,
        result: Exported,
        progress: Callable[[Progress], None] | None,
        count: int,
    ) -> None:
        kind = sniff(bytes(print_.head), attachment.name)
        result.content = kind.label
        warning = disagreement(kind, attachment.name, attachment.type)
        if warning:
            result.notes.append(warning)
        base = safe_filename(attachment.name, index, self.source.item_id)
        stem = base.rsplit(".", 1)[0] if "." in base[12:] else base

        def step(done: int, pages: int) -> None:
            if progress is not None:
                progress(Progress(index + 1, count, attachment.name, done, pages))

        step(0, 0)
        tmp = self.work / f"copy-{index + 1}"
        workdir = self.work / f"pages-{index + 1}"
        workdir.mkdir(mode=0o700)
        job = Job(
            kind,
            attachment.size,
            self.feed(index, print_.digest()),
            tmp,
            workdir,
            self.options.ocr,
            step,
            self.cancel,
        )
        copy, name = self._make(kind, bytes(print_.head), job, stem, base, result)
        result.copy = copy
        result.path = _link(tmp, self.folder, name)
        shutil.rmtree(workdir, ignore_errors=True)
        provenance = Provenance(
            item=self.source.item_id,
            attachment=index + 1,
            original_name=attachment.name,
            original_size=attachment.size,
            original_sha256=result.sha256,
            claimed_type=attachment.type,
            content=kind.label,
            envelope_sha256=self.report.envelope_sha256,
            copy=copy,
            copy_file=result.path.name,
            copy_sha256=file_sha256(result.path),
            made=today().isoformat(),
            notes=list(result.notes),
        )
        sidecar = self.work / f"sidecar-{index + 1}"
        write_sidecar(sidecar, provenance)
        result.sidecar = _link(sidecar, self.folder, result.path.name + ".provenance.json")

    def _make(
        self, kind: Kind, head: bytes, job: Job, stem: str, base: str, result: Exported
    ) -> tuple[str, str]:
        """Write the copy at ``job.out``; return its kind and the name it gets."""
        copy = self.options.copy
        if copy == "original":
            with job.out.open("xb") as out:
                job.feed(out)
            result.notes.append(ORIGINAL_WARNING)
            return "original", base
        if copy == "viewing" and kind.route == "text":
            with job.out.open("xb") as out:
                utf16 = head[:2] in (b"\xff\xfe", b"\xfe\xff")
                text = TextCopy(out, "utf-16" if utf16 else "utf-8")
                job.feed(cast(IO[bytes], text))
                text.close()
            return "viewing", f"{stem}.viewing.txt"
        if copy == "viewing" and kind.route in ("pdf", "office", "image"):
            made = self.converter.viewing_copy(job)
            if made.ocr:
                result.notes.append("the text was recognised by OCR and may contain errors")
            return "viewing", f"{stem}.viewing.{made.format}"
        if copy == "viewing" and kind.route == "media":
            result.notes.append(MEDIA_WARNING)
        elif copy == "viewing":
            raise ConversionError(
                f"the desk cannot make a safe copy of a {kind.label}; "
                "export it with --original only if you must"
            )
        cleaned = self.converter.publication_copy(job)
        if cleaned.found:
            result.notes.append("metadata removed: " + ", ".join(cleaned.found))
        else:
            result.notes.append("no metadata was found to remove")
        if cleaned.left:
            result.notes.append("metadata that could not be removed: " + ", ".join(cleaned.left))
        return "publication", f"{stem}.publication.{kind.ext}"
