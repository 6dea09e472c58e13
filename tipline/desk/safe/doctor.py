"""`tipline-desk doctor`: can safe copies be made on this machine? Checked by making some."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from PIL import Image

from ...crypto.errors import TiplineError
from .converter import Converter, Job
from .sniff import sniff

PROGRAMS = (
    "/usr/bin/bwrap",
    "/usr/bin/prlimit",
    "/usr/bin/python3",
    "/usr/bin/pdfinfo",
    "/usr/bin/pdftoppm",
    "/usr/bin/soffice",
    "/usr/bin/qpdf",
    "/usr/bin/tesseract",
    "/usr/bin/mat2",
)
# A one-page PDF with a line of text, small enough to keep here.
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]"
    b"/Count 1>>endobj\n3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 100]/Resources<<"
    b"/Font<</F1 4 0 R>>>>/Contents 5 0 R>>endobj\n4 0 obj<</Type/Font/Subtype/Type1/BaseFont"
    b"/Helvetica>>endobj\n5 0 obj<</Length 38>>stream\nBT /F1 18 Tf 20 40 Td (Tipline) Tj ET\n"
    b"endstream endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


def checks(converter: Converter) -> list[tuple[str, str | None]]:
    """(what was checked, None or why it failed), for each check, in order."""
    results: list[tuple[str, str | None]] = []
    for program in PROGRAMS:
        ok = os.access(program, os.X_OK)
        results.append((program, None if ok else "missing (docs/DESK.md lists the packages)"))
    trials: list[tuple[str, bytes, Callable[[Job], object]]] = [
        ("a viewing copy of a PDF", PDF, converter.viewing_copy),
        ("a viewing copy of an image", _png(), converter.viewing_copy),
        ("a publication copy of an image", _png(), converter.publication_copy),
    ]
    try:
        converter.check()
        results.append((f"the {converter.name} converter", None))
    except TiplineError as exc:
        return [*results, (f"the {converter.name} converter", exc.message)]
    with tempfile.TemporaryDirectory(prefix="tipline-doctor-") as tmp:
        for n, (what, data, make) in enumerate(trials):
            work = Path(tmp) / str(n)
            work.mkdir()

            def feed(target: IO[bytes], data: bytes = data) -> None:
                target.write(data)

            job = Job(sniff(data), len(data), feed, work / "copy", work)
            try:
                make(job)
                problem = None if job.out.stat().st_size > 0 else "it wrote nothing"
            except (TiplineError, OSError) as exc:
                problem = exc.message if isinstance(exc, TiplineError) else str(exc)
            results.append((what, problem))
            shutil.rmtree(work, ignore_errors=True)
    return results
