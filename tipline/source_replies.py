"""Opening replies for a source who has no JavaScript, with the source's own reply key.

This module sits outside ``tipline.server`` on purpose: the server package must never import
anything that opens an envelope (tests/test_architecture.py). It accepts only a codename, from
which it derives the reply key itself, so it cannot be handed a journalist's key. The key lives
in memory for the one request in which the source typed the codename.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from .crypto.codename import derive, normalize
from .crypto.envelope import open_envelope
from .crypto.errors import TiplineError
from .wordlist import load_wordlist

MAX_REPLY_OPENED = 4 << 20  # replies are short letters; bigger ones are left for the JS reader


@dataclass(frozen=True)
class OpenedReply:
    """A reply's text and its attachments' names (their bytes are not kept)."""

    reply_id: str
    message: str | None
    attachment_names: tuple[str, ...]


def open_replies(codename: str, replies: Iterable[tuple[str, int, BinaryIO]]) -> list[OpenedReply]:
    """Open each ``(id, size, file)`` with the reply key derived from ``codename``.

    A reply that fails to open, or is too large to open in memory, comes back with ``message``
    None; the caller says so without saying why (every failure looks the same).
    Raises ``CodenameError`` for a codename that is not well formed.
    """
    secret = derive(normalize(load_wordlist(), codename)).reply_secret_key
    opened = []
    for reply_id, size, file in replies:
        inner = None
        if size <= MAX_REPLY_OPENED:
            try:
                inner = open_envelope(file, [secret])
            except TiplineError:
                inner = None
        if inner is None or inner.kind != "reply":
            opened.append(OpenedReply(reply_id, None, ()))
        else:
            names = tuple(a.name for a in inner.attachments)
            opened.append(OpenedReply(reply_id, inner.message, names))
    return opened
