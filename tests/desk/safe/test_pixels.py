"""The pixel stream reader: every bound is checked before anything is allocated or read."""

from __future__ import annotations

import io
import struct

import pytest

from tipline.desk.safe import stage1
from tipline.desk.safe.errors import BoundsError
from tipline.desk.safe.pixels import (
    EXIT_PAGES,
    EXIT_PASSWORD,
    EXIT_SIZE,
    EXIT_UNREADABLE,
    EXIT_UNSUPPORTED,
    MAGIC,
    STRIP_BYTES,
    Bounds,
    PixelReader,
)


class Recording(io.BytesIO):
    """A stream that remembers the largest read asked of it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.largest = 0

    def read(self, size: int | None = -1, /) -> bytes:
        assert size is not None and size >= 0, "the reader never reads without a bound"
        self.largest = max(self.largest, size)
        return super().read(size)


def stream(pages: list[tuple[int, int]], claimed: int | None = None, fill: bool = True) -> bytes:
    out = MAGIC + struct.pack(">I", len(pages) if claimed is None else claimed)
    for w, h in pages:
        out += b"P6\n%d %d\n255\n" % (w, h) + (bytes(w * h * 3) if fill else b"")
    return out


def read_all(data: bytes, bounds: Bounds | None = None) -> list[tuple[int, int, int]]:
    reader = PixelReader(Recording(data), bounds or Bounds())
    got = []
    for page in reader:
        size = sum(len(chunk) for _, _, chunk in page.strips())
        got.append((page.width, page.height, size))
    return got


def test_a_good_stream_reads_in_bounded_strips() -> None:
    src = Recording(stream([(3000, 2000), (10, 10)]))
    reader = PixelReader(src, Bounds())
    sizes = [sum(len(c) for _, _, c in page.strips()) for page in reader]
    assert sizes == [3000 * 2000 * 3, 300]
    assert src.largest <= STRIP_BYTES  # never a whole page at once


def test_a_claim_of_100000_pages_is_refused_before_any_page_is_read() -> None:
    src = Recording(stream([(10, 10)], claimed=100_000))
    with pytest.raises(BoundsError, match="claims 100,000 pages"):
        PixelReader(src, Bounds())
    assert src.tell() == len(MAGIC) + 4  # nothing after the header was read
    assert read_all(stream([(10, 10)], claimed=1)) == [(10, 10, 300)]  # control


@pytest.mark.parametrize(
    ("width", "height", "why"),
    [
        (0, 10, "not a P6 header"),
        (10_001, 10, "out of bounds"),
        (10, 2**32 - 1, "too long"),
        (99_999, 99_999, "out of bounds"),
        (9000, 9000, "81,000,000 pixels is out of bounds"),
    ],
)
def test_an_oversized_page_is_refused_from_its_header(width: int, height: int, why: str) -> None:
    src = Recording(stream([(width, height)], fill=False))
    with pytest.raises(BoundsError, match=why):
        read_all(src.getvalue())
    assert src.largest < 16


@pytest.mark.parametrize(
    "header",
    [
        b"P6\n10 10\n65535\n",
        b"P5\n10 10\n255\n",
        b"P6 10 10 255\n",
        b"P6\n010 10\n255\n",
        b"P6\n#c\n10 10\n255\n",
        b"P6\n-1 10\n255\n",
        b"P6\n10  10\n255\n",
    ],
)
def test_anything_but_the_exact_ppm_header_is_refused(header: bytes) -> None:
    with pytest.raises(BoundsError, match="header"):
        read_all(MAGIC + struct.pack(">I", 1) + header + bytes(300))
    assert read_all(MAGIC + struct.pack(">I", 1) + b"P6\n10 10\n255\n" + bytes(300)) == [
        (10, 10, 300)
    ]  # control


def test_the_running_total_is_bounded() -> None:
    bounds = Bounds(total_bytes=2 * 100 * 100 * 3)
    assert len(read_all(stream([(100, 100)] * 2), bounds)) == 2  # control: exactly the total
    with pytest.raises(BoundsError, match="more pixels"):
        read_all(stream([(100, 100)] * 3), bounds)


def test_short_streams_trailing_bytes_and_wrong_magic_are_refused() -> None:
    good = stream([(4, 4)])
    with pytest.raises(BoundsError, match="ended before"):
        read_all(good[:-1])
    with pytest.raises(BoundsError, match="bytes after"):
        read_all(good + b"\x00")
    with pytest.raises(BoundsError, match="not a pixel stream"):
        read_all(b"TLPIXEL2" + good[8:])
    assert read_all(good) == [(4, 4, 48)]


def test_stage1_speaks_the_same_numbers() -> None:
    assert stage1.MAGIC == MAGIC
    assert (
        stage1.EXIT_UNSUPPORTED,
        stage1.EXIT_PAGES,
        stage1.EXIT_SIZE,
        stage1.EXIT_UNREADABLE,
        stage1.EXIT_PASSWORD,
    ) == (EXIT_UNSUPPORTED, EXIT_PAGES, EXIT_SIZE, EXIT_UNREADABLE, EXIT_PASSWORD)


def test_stage1_lowers_the_resolution_of_a_huge_page() -> None:
    dpi = stage1.page_dpi(14_400, 14_400, 150, 10_000, 20_000_000)  # a 200-inch square page
    side = 14_400 / 72 * dpi
    assert dpi < 150 and side * side <= 20_000_000 and side <= 10_000
    assert stage1.page_dpi(612, 792, 150, 10_000, 20_000_000) == 150  # letter: unchanged
