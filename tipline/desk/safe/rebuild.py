"""Stage 2, outside the sandbox: a new PDF (or PNG) built from nothing but checked pixels.

Each page is assembled from its strips into one Pillow image (the only page held in memory),
encoded as a one-page PDF (JPEG inside, no metadata) or, with OCR, handed as a JPEG to Tesseract
in a sandbox of its own, which returns the page with an invisible text layer; qpdf then joins the
pages. Nothing of the original's structure can survive: no script, no embedded file, no link, no
form, no metadata, only what the pixels show.
"""

from __future__ import annotations

import io
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from .errors import BoundsError, CancelledError, ConversionError
from .pixels import Page, PixelReader
from .sandbox import Limits, Sandbox

JPEG_QUALITY = 85
WHOLE_PAGE = 16 << 20  # a page up to this many bytes of pixels is read in one piece (faster)
PNG_COMPRESSION = 6
MAX_OCR_PAGE = 64 << 20
QPDF = "/usr/bin/qpdf"  # what Tesseract may return for one page

Progress = Callable[[int, int], None]  # pages done, pages in all


def page_image(page: Page) -> Image.Image:
    """One page as an RGB image: read whole when it is of ordinary size, otherwise assembled strip
    by strip, so that a page at the pixel bound is never held twice."""
    if page.width * page.height * 3 <= WHOLE_PAGE:
        ((_, _, data),) = page.strips(WHOLE_PAGE)
        return Image.frombytes("RGB", (page.width, page.height), data)
    image = Image.new("RGB", (page.width, page.height))
    for y, rows, data in page.strips():
        strip = Image.frombytes("RGB", (page.width, rows), data)
        image.paste(strip, (0, y))
        strip.close()
    return image


class Ocr:
    """Tesseract, in the sandbox, turning one page image into a PDF page with a text layer."""

    def __init__(self, sandbox: Sandbox, limits: Limits, language: str) -> None:
        self.sandbox, self.limits, self.language = sandbox, limits, language

    def page(self, image: Image.Image, out: Path, cancel: threading.Event) -> None:
        """Write ``image`` with its recognised text as a one-page PDF at ``out``."""
        jpeg = io.BytesIO()
        image.save(jpeg, "JPEG", quality=JPEG_QUALITY)
        command = ["/usr/bin/tesseract", "stdin", "stdout", "-l", self.language, "pdf"]
        with self.sandbox.start(command, self.limits, cancel=cancel) as run:
            try:
                run.stdin.write(jpeg.getbuffer())
                run.stdin.close()
            except BrokenPipeError:
                pass
            data = run.stdout.read(MAX_OCR_PAGE + 1)
            code = run.close()
        if len(data) > MAX_OCR_PAGE:
            raise BoundsError("the text recognition returned too much for one page")
        if code != 0 or not data.startswith(b"%PDF-"):
            raise ConversionError("the text recognition (Tesseract) failed on a page")
        out.write_bytes(data)


def build_pdf(
    reader: PixelReader,
    out: Path,
    workdir: Path,
    dpi: float,
    ocr: Ocr | None,
    progress: Progress,
    cancel: threading.Event,
) -> int:
    """Write the pages of ``reader`` as one PDF at ``out``; return the number of pages."""
    parts: list[Path] = []
    progress(0, reader.pages)
    for page in reader:
        image = page_image(page)
        part = workdir / f"page-{page.number:05d}.pdf"
        try:
            if ocr is not None:
                ocr.page(image, part, cancel)
            else:
                # Pillow writes a title and dates unless given empty ones: the copy has none.
                image.save(
                    part,
                    "PDF",
                    resolution=dpi,
                    quality=JPEG_QUALITY,
                    title="",
                    creationDate=None,
                    modDate=None,
                )
        finally:
            image.close()
        parts.append(part)
        progress(page.number, reader.pages)
        if cancel.is_set():
            raise CancelledError()
    join_pdf(parts, out, workdir)
    return len(parts)


def build_png(reader: PixelReader, out: Path, progress: Progress) -> int:
    """Write the one page of ``reader`` as a PNG at ``out`` (an image stays an image)."""
    if reader.pages != 1:
        raise BoundsError("an image must come out as one page")
    progress(0, 1)
    for page in reader:
        image = page_image(page)
        try:
            image.save(out, "PNG", compress_level=PNG_COMPRESSION)
        finally:
            image.close()
        progress(1, 1)
    return 1


def join_pdf(parts: list[Path], out: Path, workdir: Path) -> None:
    """Join one-page PDFs (all made by the desk) into ``out`` with qpdf."""
    args = workdir / "qpdf-arguments"
    # An argument file keeps thousands of pages off the command line.
    lines = ["--empty", "--deterministic-id", "--pages", *map(str, parts), "--", str(out)]
    args.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        done = subprocess.run(  # noqa: S603 - fixed program, paths made by the desk
            [QPDF, f"@{args}"], capture_output=True, check=False, timeout=600
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConversionError("qpdf could not join the pages (is qpdf installed?)") from exc
    if done.returncode not in (0, 3):  # 3: warnings only
        raise ConversionError("qpdf could not join the pages")
