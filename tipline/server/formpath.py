"""The no-JS submission path: seal the form's message and spooled files into one envelope.

The files arrived already encrypted under per-request spool keys (``spooled.SealingRequest``);
here they are streamed back through those keys straight into ``envelope.seal``, so the only
plaintext is the chunk in memory at that moment.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage

from ..crypto.envelope import seal
from ..crypto.errors import TiplineError
from ..crypto.inner import MAX_ATTACHMENTS, MAX_MESSAGE, MAX_NAME_BYTES, Attachment, Inner
from ..crypto.padding import padded_length
from .keyset import Current
from .models import new_id
from .sources import blobs
from .spooled import SpoolFile


class FormError(TiplineError):
    """the submission was refused"""

    # The detail is already a translated sentence for the source.


@dataclass(frozen=True)
class Part:
    """One uploaded file: its display name, claimed type and encrypted spool."""

    name: str
    type: str
    spool: SpoolFile


def display_name(filename: str, index: int) -> str:
    """A safe display name: no folders, no control characters, at most 255 UTF-8 bytes."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    while len(name.encode("utf-8")) > MAX_NAME_BYTES:
        name = name[:-1]
    return name or f"attachment-{index + 1}"


def claimed_type(content_type: str | None) -> str:
    """The MIME type the browser claimed, if it is short printable ASCII (never trusted)."""
    value = (content_type or "").split(";", 1)[0].strip()
    if value and len(value) <= 127 and value.isascii() and value.isprintable():
        return value
    return "application/octet-stream"


def collect_parts(files: list[FileStorage]) -> list[Part]:
    """The non-empty file parts (a form with no file chosen sends an empty, nameless part)."""
    parts: list[Part] = []
    for storage in files:
        stream = storage.stream
        if not isinstance(stream, SpoolFile):  # never plaintext on disk: refuse to go on
            raise RuntimeError("an upload bypassed the sealing spool")
        if not storage.filename and stream.size == 0:
            continue
        parts.append(
            Part(
                display_name(storage.filename or "", len(parts)),
                claimed_type(storage.mimetype),
                stream,
            )
        )
    if len(parts) > MAX_ATTACHMENTS:
        raise FormError(_("Send at most %(count)d files at once.", count=MAX_ATTACHMENTS))
    return parts


def check_submission(message: str, parts: list[Part], max_size: int) -> None:
    """Refuse an empty or oversized submission before anything is stored."""
    if len(message.encode("utf-8", "replace")) > MAX_MESSAGE:
        raise FormError(_("The message is longer than %(size)d KiB.", size=MAX_MESSAGE // 1024))
    if not message.strip() and not parts:
        raise FormError(_("Write a message or choose a file."))
    if sum(p.spool.size for p in parts) > max_size:
        raise FormError(_("Your files are larger than this tip line accepts."))


def seal_to_blob(
    message: str, parts: list[Part], keys: Current, reply_key: bytes
) -> tuple[str, int]:
    """Seal the message and files to the active keys into a new durable blob; its id and size."""
    inner = Inner(
        kind="submission",
        sealed_by="server",
        message=message,
        reply_public_key=reply_key,
        attachments=tuple(Attachment(p.name, p.spool.size, p.type) for p in parts),
    )
    store = blobs()
    store.check_space(padded_length(inner.content_length()))
    recipients = [r.public_key for r in keys.manifest.recipients]
    readers = [p.spool.reader() for p in parts]
    blob_id = new_id()
    size = store.write("submissions", blob_id, lambda out: seal(out, recipients, inner, readers))
    return blob_id, size
