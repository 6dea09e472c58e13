"""Stage 1, run inside the sandbox by Debian's own Python: the original in, pixels (or a cleaned
copy) out.

This file is not imported by the desk (only its tests import it, to check the numbers it shares
with ``pixels.py``); the sandbox runs it as ``python3 -I stage1.py MODE ...``. It reads the
original from standard input into the sandbox's private /tmp, and writes to standard output:

- ``view KIND DPI PAGES SIDE PIXELS SOURCE_PIXELS``: the pixel stream of ``pixels.py`` (each page
  a binary PPM, as pdftoppm writes them straight to standard output). KIND is
  ``pdf`` (rendered page by page by poppler's pdftoppm), ``office.EXT`` (LibreOffice, headless,
  macros disabled, to PDF first) or ``image.EXT`` (decoded by GdkPixbuf, SVG through librsvg).
  Pages are rendered at DPI, or lower for a page that would break SIDE or PIXELS; an image of
  more than SOURCE_PIXELS is refused before it is decoded.
- ``clean EXT``: mat2 removes the metadata; out comes "TLCLEAN1", a length-prefixed JSON report
  of the metadata fields found before and after, and the length-prefixed cleaned file.

It fails only through its exit status (the numbers in ``pixels.py``); what it writes to standard
error never reaches the journalist. It uses the standard library, GdkPixbuf through PyGObject,
and Debian's poppler-utils, LibreOffice and mat2: nothing from the desk's own environment.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys

MAGIC = b"TLPIXEL1"
CLEAN_MAGIC = b"TLCLEAN1"
EXIT_UNSUPPORTED, EXIT_PAGES, EXIT_SIZE, EXIT_UNREADABLE, EXIT_PASSWORD = 10, 11, 12, 13, 14
WORK = "/tmp/work"
MAX_FIELDS = 100
LIBREOFFICE_PROFILE = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry"
 xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop
 oor:name="MacroSecurityLevel" oor:op="fuse"><value>3</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop
 oor:name="DisableMacrosExecution" oor:op="fuse"><value>true</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop
 oor:name="BlockUntrustedRefererLinks" oor:op="fuse"><value>true</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Misc"><prop
 oor:name="UseLocking" oor:op="fuse"><value>false</value></prop></item>
</oor:items>
"""


class StageError(Exception):
    """Stop with an exit status."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def receive(name: str) -> str:
    """Copy standard input (the original) into the sandbox's /tmp; return its path."""
    os.makedirs(WORK, exist_ok=True)
    path = os.path.join(WORK, name)
    with open(path, "wb") as out:
        shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
    return path


def write(data: bytes) -> None:
    sys.stdout.buffer.write(data)


# --- PDF --------------------------------------------------------------------------------------


def pdf_info(path: str, max_pages: int) -> list[tuple[float, float]]:
    """Each page's size in points, as shown (rotation applied), from one pdfinfo run."""
    done = subprocess.run(
        ["/usr/bin/pdfinfo", "-f", "1", "-l", str(max_pages + 1), path],
        capture_output=True,
        check=False,
    )
    if b"Incorrect password" in done.stderr:
        raise StageError(EXIT_PASSWORD)
    match = re.search(rb"^Pages:\s+(\d+)\s*$", done.stdout, re.M)
    if done.returncode != 0 or not match:
        raise StageError(EXIT_UNREADABLE)
    pages = int(match.group(1))
    if not 1 <= pages <= max_pages:
        raise StageError(EXIT_PAGES if pages else EXIT_UNREADABLE)
    sizes: dict[int, list[float]] = {}
    for m in re.finditer(rb"^Page\s+(\d+) size:\s+([\d.]+) x ([\d.]+)", done.stdout, re.M):
        sizes[int(m.group(1))] = [float(m.group(2)), float(m.group(3))]
    for m in re.finditer(rb"^Page\s+(\d+) rot:\s+(\d+)", done.stdout, re.M):
        if int(m.group(2)) % 180 == 90 and int(m.group(1)) in sizes:
            sizes[int(m.group(1))].reverse()
    if sorted(sizes) != list(range(1, pages + 1)):
        raise StageError(EXIT_UNREADABLE)
    return [(sizes[n][0], sizes[n][1]) for n in range(1, pages + 1)]


def page_dpi(width: float, height: float, dpi: float, side: int, pixels: int) -> float:
    """The resolution for one page: ``dpi``, or less for a page that would break the bounds."""
    if width <= 0 or height <= 0:
        raise StageError(EXIT_UNREADABLE)
    fit = min(dpi, (side - 2) * 72 / max(width, height))
    fit = min(fit, math.sqrt(pixels * 0.98 / (width * height)) * 72)
    if fit < 1:
        raise StageError(EXIT_SIZE)
    return math.floor(fit * 100) / 100


def render_pdf(path: str, dpi: float, max_pages: int, side: int, pixels: int) -> None:
    sizes = pdf_info(path, max_pages)
    resolutions = [page_dpi(w, h, dpi, side, pixels) for w, h in sizes]
    write(MAGIC + struct.pack(">I", len(sizes)))
    sys.stdout.buffer.flush()
    first, pages = 1, len(sizes)
    while first <= pages:  # one pdftoppm for each run of pages at the same resolution
        last = first
        while last < pages and resolutions[last] == resolutions[first - 1]:
            last += 1
        # pdftoppm writes its PPM pages straight to the desk (this program's standard output):
        # no copy passes through Python, and the desk checks every page header anyway. stdbuf
        # gives its stdio a 1 MiB buffer: 4 KiB writes into a pipe cost it a fifth more CPU.
        done = subprocess.run(
            [
                "/usr/bin/stdbuf",
                "-o1M",
                "/usr/bin/pdftoppm",
                "-r",
                str(resolutions[first - 1]),
                "-f",
                str(first),
                "-l",
                str(last),
                path,
            ],
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if done.returncode != 0:
            raise StageError(EXIT_UNREADABLE)
        first = last + 1


# --- office documents ---------------------------------------------------------------------------


def office_to_pdf(path: str) -> str:
    profile = "/tmp/lo/user"
    os.makedirs(profile, exist_ok=True)
    with open(os.path.join(profile, "registrymodifications.xcu"), "w", encoding="utf-8") as f:
        f.write(LIBREOFFICE_PROFILE)
    outdir = "/tmp/pdf"
    subprocess.run(
        [
            "/usr/bin/soffice",
            "-env:UserInstallation=file:///tmp/lo",
            "--headless",
            "--norestore",
            "--nolockcheck",
            "--nologo",
            "--nodefault",
            "--convert-to",
            "pdf",
            "--outdir",
            outdir,
            path,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    result = os.path.join(outdir, os.path.splitext(os.path.basename(path))[0] + ".pdf")
    if not os.path.isfile(result):  # LibreOffice exits 0 even when it could not convert
        raise StageError(EXIT_UNREADABLE)
    return result


# --- images -----------------------------------------------------------------------------------


def render_image(path: str, side: int, pixels: int, source_pixels: int) -> None:
    import gi

    gi.require_version("GdkPixbuf", "2.0")
    from gi.repository import GdkPixbuf, GLib

    info, width, height = GdkPixbuf.Pixbuf.get_file_info(path)
    if info is None or width <= 0 or height <= 0:
        raise StageError(EXIT_UNREADABLE)
    if width * height > source_pixels:
        raise StageError(
            EXIT_SIZE
        )  # before a byte of it is decoded: a decompression bomb stops here
    scale = min(1.0, (side - 2) / max(width, height), math.sqrt(pixels * 0.98 / (width * height)))
    try:
        if scale < 1.0:
            target = (max(1, int(width * scale)), max(1, int(height * scale)))
            pix = GdkPixbuf.Pixbuf.new_from_file_at_scale(path, target[0], target[1], True)
        else:
            pix = GdkPixbuf.Pixbuf.new_from_file(path)
        pix = pix.apply_embedded_orientation() or pix
    except GLib.Error as exc:
        raise StageError(EXIT_UNREADABLE) from exc
    w, h = pix.get_width(), pix.get_height()
    if w > side or h > side or w * h > pixels:
        raise StageError(EXIT_SIZE)
    if pix.get_has_alpha() or pix.get_n_channels() != 3 or pix.get_bits_per_sample() != 8:
        flat = GdkPixbuf.Pixbuf.new(GdkPixbuf.Colorspace.RGB, False, 8, w, h)
        flat.fill(0xFFFFFFFF)  # transparent parts show as white paper
        pix.composite(flat, 0, 0, w, h, 0, 0, 1, 1, GdkPixbuf.InterpType.NEAREST, 255)
        pix = flat
    stride, data = pix.get_rowstride(), pix.get_pixels()
    write(MAGIC + struct.pack(">I", 1) + b"P6\n%d %d\n255\n" % (w, h))
    row = w * 3
    for y in range(h):
        write(data[y * stride : y * stride + row])


# --- publication copies -----------------------------------------------------------------------


def metadata_fields(meta: object, prefix: str = "") -> list[str]:
    """The names of the metadata fields in mat2's answer (values are never sent out)."""
    fields: list[str] = []
    if isinstance(meta, dict):
        for key, value in sorted(meta.items(), key=lambda kv: str(kv[0])):
            name = f"{prefix}{key}"[:80]
            if isinstance(value, dict):
                fields += metadata_fields(value, prefix=f"{name}: ")
            else:
                fields.append(name)
    return fields


def clean(ext: str) -> None:
    # libmat2 itself, not the mat2 command: it is what the command calls, its own bubblewrap
    # would fail inside this sandbox, and Debian 12's command line inverts --no-sandbox.
    import logging

    from libmat2 import UnknownMemberPolicy, parser_factory

    logging.disable(logging.CRITICAL)
    path = receive("original." + ext)
    try:
        parser, _ = parser_factory.get_parser(path)
    except ValueError as exc:
        raise StageError(EXIT_UNREADABLE) from exc
    if parser is None:
        raise StageError(EXIT_UNSUPPORTED)
    parser.sandbox = False
    parser.unknown_member_policy = UnknownMemberPolicy.OMIT  # what mat2 does not know goes
    try:
        before = metadata_fields(parser.get_meta())
        if not parser.remove_all():
            raise StageError(EXIT_UNREADABLE)
        cleaned = parser.output_filename
        after, _ = parser_factory.get_parser(cleaned)
        left: list[str] = []
        if after is not None:
            after.sandbox = False
            left = metadata_fields(after.get_meta())
    except (ValueError, RuntimeError, OSError) as exc:
        raise StageError(EXIT_UNREADABLE) from exc
    report = json.dumps({"found": before[:MAX_FIELDS], "left": left[:MAX_FIELDS]}).encode()
    write(CLEAN_MAGIC + struct.pack(">I", len(report)) + report)
    write(struct.pack(">Q", os.path.getsize(cleaned)))
    with open(cleaned, "rb") as src:
        shutil.copyfileobj(src, sys.stdout.buffer, 1 << 20)


def view(kind: str, dpi: float, pages: int, side: int, pixels: int, source_pixels: int) -> None:
    route, _, ext = kind.partition(".")
    if route == "pdf":
        render_pdf(receive("original.pdf"), dpi, pages, side, pixels)
    elif route == "office" and ext.isalnum():
        render_pdf(office_to_pdf(receive("original." + ext)), dpi, pages, side, pixels)
    elif route == "image" and ext.isalnum():
        render_image(receive("original." + ext), side, pixels, source_pixels)
    else:
        raise StageError(EXIT_UNSUPPORTED)


def main(argv: list[str]) -> int:
    try:
        if len(argv) == 7 and argv[0] == "view":
            view(argv[1], float(argv[2]), *(int(a) for a in argv[3:7]))
        elif len(argv) == 2 and argv[0] == "clean" and argv[1].isalnum():
            clean(argv[1])
        else:
            return 2
        sys.stdout.buffer.flush()
    except StageError as exc:
        return exc.code
    except BrokenPipeError:
        return 1
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    os._exit(code)
