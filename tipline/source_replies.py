"""Opening replies for a source who has no JavaScript, with the source's own reply key.

This module sits outside ``tipline.server`` on purpose: the server package must never import
anything that opens an envelope (tests/test_architecture.py). It accepts only a codename, from
which it derives the reply key itself, so it cannot be handed a journalist's key. The key lives
in memory for the one request in which the source typed the codename: listing the replies, or
streaming one attachment to the source (``open_attachment``), never longer.

Nothing opened is written anywhere: messages go into the page, attachment bytes into the
response, a chunk at a time, and only after the whole envelope has authenticated.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from .crypto.codename import derive, normalize
from .crypto.envelope import open_envelope
from .crypto.errors import TiplineError
from .crypto.inner import Attachment
from .wordlist import load_wordlist

PIECES_IN_FLIGHT = 4  # attachment pieces (at most 64 KiB each) between the opener and the response


@dataclass(frozen=True)
class OpenedReply:
    """A reply's text and its attachments' names and sizes (their bytes are not kept)."""

    reply_id: str
    message: str | None
    attachments: tuple[Attachment, ...]

    @property
    def attachment_names(self) -> tuple[str, ...]:
        """The attachments' display names."""
        return tuple(a.name for a in self.attachments)


def _secret(codename: str) -> bytes:
    return derive(normalize(load_wordlist(), codename)).reply_secret_key


def open_replies(codename: str, replies: Iterable[tuple[str, int, BinaryIO]]) -> list[OpenedReply]:
    """Open each ``(id, size, file)`` with the reply key derived from ``codename``.

    Attachments are checked and dropped, a chunk at a time, so a reply of any size opens in
    bounded memory. A reply that fails to open comes back with ``message`` None; the caller says
    so without saying why (every failure looks the same).
    Raises ``CodenameError`` for a codename that is not well formed.
    """
    secret = _secret(codename)
    opened = []
    for reply_id, _size, file in replies:
        try:
            inner = open_envelope(file, [secret])
        except TiplineError:
            inner = None
        if inner is None or inner.kind != "reply":
            opened.append(OpenedReply(reply_id, None, ()))
        else:
            opened.append(OpenedReply(reply_id, inner.message, inner.attachments))
    return opened


def open_attachment(
    codename: str, file: BinaryIO, index: int
) -> tuple[Attachment, Iterator[bytes]] | None:
    """Attachment ``index`` of the reply in ``file`` (seekable), opened with the reply key from
    ``codename``: its description and an iterator of its bytes. None if the reply does not
    open, is not a reply, or has no such attachment.

    The envelope is opened twice: once whole, checking every chunk and dropping the bytes, and
    only then again, handing the attachment's bytes out as they are decrypted. So a source never
    receives a byte of a reply that does not authenticate; the second pass checks everything
    again, and an iterator that raises (the file changed in between) ends the download unfinished.
    Raises ``CodenameError`` for a codename that is not well formed.
    """
    secret = _secret(codename)
    try:
        inner = open_envelope(file, [secret])
    except TiplineError:
        return None
    if inner.kind != "reply" or not 0 <= index < len(inner.attachments):
        return None
    file.seek(0)
    return inner.attachments[index], _stream(file, secret, index)


class _Pipe:
    """The file-like sink the opener writes one attachment into; the response reads it."""

    def __init__(self) -> None:
        self.pieces: queue.Queue[bytes | BaseException | None] = queue.Queue(PIECES_IN_FLIGHT)
        self.closed = threading.Event()

    def write(self, data: bytes | memoryview) -> int:
        while not self.closed.is_set():
            try:
                self.pieces.put(bytes(data), timeout=1)
                return len(data)
            except queue.Full:
                continue
        raise BrokenPipeError("the download was abandoned")

    def put_end(self, outcome: BaseException | None) -> None:
        while not self.closed.is_set():
            try:
                self.pieces.put(outcome, timeout=1)
                return
            except queue.Full:
                continue


def _stream(file: BinaryIO, secret: bytes, index: int) -> Iterator[bytes]:
    """Open the envelope on a helper thread (the opener pushes bytes; a response pulls them)
    and yield the attachment's bytes; raise if the open fails."""
    pipe = _Pipe()

    def sink(at: int, _attachment: Attachment) -> BinaryIO | None:
        return pipe if at == index else None  # type: ignore[return-value]

    def run() -> None:
        try:
            open_envelope(file, [secret], sink, write_behind=False)
        except BaseException as exc:  # handed to the reader, raised there
            pipe.put_end(exc)
        else:
            pipe.put_end(None)

    worker = threading.Thread(target=run, name="reply-attachment", daemon=True)
    worker.start()
    try:
        while True:
            piece = pipe.pieces.get()
            if piece is None:
                return
            if isinstance(piece, BaseException):
                raise piece
            yield piece
    finally:
        pipe.closed.set()
        worker.join(timeout=5)
