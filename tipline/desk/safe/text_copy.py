"""The viewing copy of a text attachment: UTF-8, written as it is decrypted, made inert."""

from __future__ import annotations

import codecs
from typing import BinaryIO

from ...crypto.pipeline import Buffer
from ..text import text_file

CARRY = 1 << 20  # text held back while waiting for the end of a line


class TextCopy:
    """A write target: bytes in (any encoding errors replaced), ``text_file`` text out.

    Text is cleaned a line at a time where it can be, so that an escape sequence is never cut in
    two between pieces; a line longer than ``CARRY`` is cleaned in pieces (what a cut sequence
    leaves is plain text, since every ESC is removed anyway).
    """

    def __init__(self, out: BinaryIO, encoding: str = "utf-8") -> None:
        self.out = out
        self.decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self.pending = ""

    def write(self, data: Buffer, /) -> int:
        """Decode, clean and write everything up to the last complete line."""
        self.pending += self.decoder.decode(bytes(data))
        cut = self.pending.rfind("\n") + 1
        if not cut and len(self.pending) > CARRY:
            cut = len(self.pending)
        if cut:
            self.out.write(text_file(self.pending[:cut]).encode("utf-8"))
            self.pending = self.pending[cut:]
        return len(data)

    def close(self) -> None:
        """Write what is left."""
        self.pending += self.decoder.decode(b"", final=True)
        self.out.write(text_file(self.pending).encode("utf-8"))
        self.pending = ""
