"""The pixel stream: the only thing that leaves the sandbox when a viewing copy is made.

Layout (docs/SPEC.md §9.1)::

    stream = magic "TLPIXEL1" (8 bytes), pages (4 bytes, unsigned big-endian), page * pages,
             then the end of the stream
    page   = "P6" LF width SP height LF "255" LF, then width * height * 3 bytes of RGB, row after
             row (a binary PPM, exactly as poppler's pdftoppm writes it; width and height in
             decimal, 1 to 5 digits, no sign, no leading zero, no comment)

The reader believes nothing: the page count, each width and height, each page's pixel count and
the running total of bytes are checked against ``Bounds`` *before* anything is allocated for
them, a short stream or a byte after the last page is an error, and pixels are handed out in
strips of rows so that no page is ever held twice.

The first stage tells why it failed through its exit status only (``FAILURES``): a program that
a hostile file may have taken over could write anything, so the desk never shows its words.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from .errors import BoundsError, ConversionError, UnsupportedError

MAGIC = b"TLPIXEL1"
STRIP_BYTES = 4 << 20  # pixels are read and handed on in strips of rows of about this size
PAGE_HEADER = re.compile(rb"P6\n([1-9][0-9]{0,4}) ([1-9][0-9]{0,4})\n255\n")
MAX_PAGE_HEADER = 3 + 6 + 6 + 4

# Exit statuses of the first stage (stage1.py says the same numbers) and what the journalist sees.
EXIT_UNSUPPORTED = 10
EXIT_PAGES = 11
EXIT_SIZE = 12
EXIT_UNREADABLE = 13
EXIT_PASSWORD = 14
FAILURES: dict[int, tuple[type[ConversionError], str]] = {
    EXIT_UNSUPPORTED: (UnsupportedError, "the converter does not know this kind of file"),
    EXIT_PAGES: (BoundsError, "it has more pages than the desk converts"),
    EXIT_SIZE: (BoundsError, "a page or image in it is larger than the desk converts"),
    EXIT_UNREADABLE: (ConversionError, "it is damaged or not what it claims to be"),
    EXIT_PASSWORD: (ConversionError, "it is locked with a password"),
}


def failure(code: int) -> ConversionError:
    """The error for a first stage that ended with ``code`` (a negative code is a signal)."""
    cls, detail = FAILURES.get(
        code, (ConversionError, "the converter failed on it (it may be damaged or hostile)")
    )
    return cls(detail)


@dataclass(frozen=True)
class Bounds:
    """The most the desk accepts from the sandbox. Stage 1 renders within them; the desk checks."""

    pages: int = 10_000
    side: int = 10_000  # pixels, either way
    page_pixels: int = 20_000_000  # per page: about 80 MiB once held as an image
    total_bytes: int = 64 << 30  # of pixels in one stream


@dataclass(frozen=True)
class Page:
    """One page's size, and a reader of its rows."""

    number: int  # from 1
    width: int
    height: int
    _reader: PixelReader

    def strips(self, size: int = STRIP_BYTES) -> Iterator[tuple[int, int, bytes]]:
        """(first row, rows, bytes) for every strip of about ``size`` bytes, top to bottom."""
        row_bytes = self.width * 3
        rows_per = max(1, size // row_bytes)
        y = 0
        while y < self.height:
            rows = min(rows_per, self.height - y)
            yield y, rows, self._reader.exact(rows * row_bytes)
            y += rows


class PixelReader:
    """Reads a pixel stream from ``src`` (the sandbox's standard output) within ``bounds``."""

    def __init__(self, src: IO[bytes], bounds: Bounds) -> None:
        self.src, self.bounds = src, bounds
        head = self.exact(len(MAGIC) + 4)
        if head[: len(MAGIC)] != MAGIC:
            raise BoundsError("it is not a pixel stream")
        (self.pages,) = struct.unpack(">I", head[len(MAGIC) :])
        if not 1 <= self.pages <= bounds.pages:
            raise BoundsError(
                f"it claims {self.pages:,} pages; the desk converts 1 to {bounds.pages:,}"
            )
        self.total = 0

    def exact(self, size: int) -> bytes:
        """Exactly ``size`` bytes, or an error if the stream ends first."""
        data = self.src.read(size)
        while len(data) < size:
            more = self.src.read(size - len(data))
            if not more:
                raise BoundsError("it ended before the last page")
            data += more
        return data

    def __iter__(self) -> Iterator[Page]:
        """Every page in order; the caller reads each page's strips before asking for the next."""
        for number in range(1, self.pages + 1):
            width, height = self.page_header()
            self.check(width, height)
            yield Page(number, width, height, self)
        if self.src.read(1):
            raise BoundsError("there are bytes after the last page")

    def page_header(self) -> tuple[int, int]:
        """A page's width and height, read a byte at a time up to its last newline, bounded."""
        head = b""
        while head.count(b"\n") < 3:
            byte = self.exact(1)
            head += byte
            if len(head) > MAX_PAGE_HEADER:
                raise BoundsError("a page header is too long")
        match = PAGE_HEADER.fullmatch(head)
        if match is None:
            raise BoundsError("a page header is not a P6 header")
        return int(match.group(1)), int(match.group(2))

    def check(self, width: int, height: int) -> None:
        """Refuse a page before anything is allocated for it."""
        b = self.bounds
        if not (1 <= width <= b.side and 1 <= height <= b.side):
            raise BoundsError(f"a page of {width} x {height} pixels is out of bounds")
        if width * height > b.page_pixels:
            raise BoundsError(f"a page of {width * height:,} pixels is out of bounds")
        self.total += width * height * 3
        if self.total > b.total_bytes:
            raise BoundsError("there are more pixels than the desk accepts from one file")
