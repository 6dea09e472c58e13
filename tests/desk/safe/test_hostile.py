"""Bad input, each a real sample made here, imported in a real sealed submission and exported with
`tipline-desk export`. Every check that a copy is clean is first run on the sample, where it must
find the hostile part (the positive control)."""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from ..conftest import Run
from . import samples
from .conftest import Imported, desk_process, sha256, vault_state


def only(folder: Path, suffix: str) -> Path:
    found = [p for p in folder.iterdir() if p.name.endswith(suffix)]
    assert len(found) == 1, sorted(p.name for p in folder.iterdir())
    return found[0]


def sidecar(copy: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(copy.with_name(copy.name + ".provenance.json").read_text())
    return data


def not_blank(png_or_pdf: Path, tmp_path: Path) -> float:
    """The share of dark pixels on the first page: the copy shows something."""
    if png_or_pdf.suffix == ".pdf":
        import subprocess

        subprocess.run(
            [
                "pdftoppm",
                "-r",
                "40",
                "-f",
                "1",
                "-l",
                "1",
                "-png",
                str(png_or_pdf),
                str(tmp_path / "look"),
            ],
            check=True,
        )
        png_or_pdf = next(tmp_path.glob("look*.png"))
    with Image.open(png_or_pdf) as image:
        grey = image.convert("L")
        dark = sum(grey.histogram()[:128])
        return dark / (grey.width * grey.height)


def test_hostile_pdf_becomes_pixels_only(
    run: Run, imported: Imported, out: Path, vault_dir: Path, tmp_path: Path
) -> None:
    data = samples.hostile_pdf()
    found = samples.pdf_hostile_parts(data)  # the positive control: the checker sees them all
    assert {
        "/JavaScript",
        "/JS",
        "/OpenAction",
        "/EmbeddedFile",
        "/Launch",
        "/Metadata",
        "/Annots",
        "/AA",
        samples.AUTHOR,
        "/Info",
    } <= found
    assert samples.VISIBLE in samples.pdf_tokens(data)
    sub = imported([("report.pdf", data, "application/pdf")])
    before = vault_state(vault_dir)

    result = run("export", sub.item.id[:8], "--to", str(out))

    copy = only(out, ".viewing.pdf")
    assert samples.pdf_hostile_parts(copy) == set()
    assert samples.pdf_fonts(copy) == [] and samples.pdf_text(copy).strip() == ""
    assert len(samples.pdf_images(copy)) == 1  # one page, one image: pixels only
    assert not_blank(copy, tmp_path) > 0.001  # and the pixels show the page
    meta = sidecar(copy)
    assert meta["original_sha256"] == sha256(data) and meta["original_size"] == len(data)
    assert meta["original_name"] == "report.pdf" and meta["claimed_type"] == "application/pdf"
    assert meta["copy"] == "viewing" and meta["copy_sha256"] == sha256(copy.read_bytes())
    assert sha256(data) in result.stdout and str(copy) in result.stdout
    assert vault_state(vault_dir) == before
    assert sha256(data) in run("show", sub.item.id[:8]).stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [copy.name, copy.name + ".provenance.json"]
    )


def test_ocr_makes_the_text_searchable_and_adds_nothing_else(
    run: Run, imported: Imported, out: Path
) -> None:
    sub = imported([("report.pdf", samples.hostile_pdf(), "application/pdf")])
    run("export", sub.item.id[:8], "--to", str(out), "--ocr")
    copy = only(out, ".viewing.pdf")
    assert samples.VISIBLE in " ".join(samples.pdf_text(copy).split())
    assert samples.pdf_hostile_parts(copy) == set()
    fonts = samples.pdf_fonts(copy)
    assert fonts and all("GlyphLessFont" in line for line in fonts)  # Tesseract's text layer


def test_docx_with_macro_author_and_tracked_changes(
    run: Run, imported: Imported, out: Path, tmp_path: Path
) -> None:
    data = samples.hostile_docx()
    assert samples.docx_hostile_parts(data) == {"macro", "author", "tracked changes"}
    sub = imported(
        [
            (
                "memo.docx",
                data,
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            )
        ]
    )

    run("export", sub.item.id[:8], "--to", str(out))
    view = only(out, ".viewing.pdf")
    assert samples.pdf_hostile_parts(view) == set() and samples.pdf_fonts(view) == []
    assert samples.pdf_text(view).strip() == "" and not_blank(view, tmp_path) > 0

    result = run("export", sub.item.id[:8], "--to", str(out), "--publication")
    clean = only(out, ".publication.docx")
    assert samples.docx_hostile_parts(clean.read_bytes()) == set()
    assert "metadata removed:" in result.stdout
    assert sidecar(clean)["copy"] == "publication"


def test_gps_jpeg(run: Run, imported: Imported, out: Path) -> None:
    data = samples.gps_jpeg()
    fields = samples.exif_fields(data)
    assert {"GPSLatitude", "GPSLongitude", "Make", "Model", "SerialNumber"} <= set(fields)
    sub = imported([("IMG_0001.jpg", data, "image/jpeg")])

    run("export", sub.item.id[:8], "--to", str(out))
    view = only(out, ".viewing.png")
    assert samples.png_chunks(view.read_bytes()) == [b"IHDR", b"IDAT", b"IEND"]
    assert not {k for k in samples.exif_fields(view.read_bytes()) if k.startswith("GPS")}
    with Image.open(view) as image:
        assert image.size == (320, 240) and image.getpixel((10, 10))[0] > 150  # still red

    result = run("export", sub.item.id[:8], "--to", str(out), "--publication")
    clean = only(out, ".publication.jpg")
    left = samples.exif_fields(clean.read_bytes())
    assert not {k for k in left if k.startswith("GPS") or k in ("Make", "Model", "SerialNumber")}
    assert "GPSLatitude" in result.stdout  # the report names what was removed


@pytest.fixture
def listener() -> tuple[str, list[bytes]]:
    server = socket.create_server(("127.0.0.1", 0))
    got: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                got.append(conn.recv(200))
                conn.sendall(b"HTTP/1.0 404 Not Found\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", got
    server.close()


def test_svg_with_an_external_reference_fetches_nothing(
    run: Run, imported: Imported, out: Path, listener: tuple[str, list[bytes]]
) -> None:
    url, got = listener
    data = samples.svg_with_external_reference(url)
    with pytest.raises(urllib.error.HTTPError):  # control: a fetch of it is seen
        urllib.request.urlopen(url + "/control.png", timeout=5)
    assert len(got) == 1 and got.pop().startswith(b"GET /control.png")
    assert url.encode() in data
    sub = imported([("chart.svg", data, "image/svg+xml")])
    run("export", sub.item.id[:8], "--to", str(out))
    view = only(out, ".viewing.png")
    assert samples.png_chunks(view.read_bytes()) == [b"IHDR", b"IDAT", b"IEND"]
    with Image.open(view) as image:
        assert image.size == (200, 100) and image.getpixel((190, 90)) == (0, 136, 255)
    assert got == []


def test_name_extension_and_content_that_disagree(run: Run, imported: Imported, out: Path) -> None:
    png = samples.png_chunks  # a real PNG, made by Pillow, named as a PDF
    image = Image.new("RGB", (30, 20), (0, 200, 0))
    import io

    buf = io.BytesIO()
    image.save(buf, "PNG")
    sub = imported(
        [
            ("invoice.pdf", buf.getvalue(), "application/pdf"),
            ("holiday.jpg", samples.hostile_pdf(), "image/jpeg"),
        ]
    )
    result = run("export", sub.item.id[:8], "--to", str(out))
    first = only(out, "-invoice.viewing.png")
    assert png(first.read_bytes())[0] == b"IHDR"
    second = only(out, "-holiday.viewing.pdf")
    assert samples.pdf_hostile_parts(second) == set()
    assert sidecar(first)["content"] == "PNG image"
    assert sidecar(second)["content"] == "PDF document"
    assert "says pdf, but its content is a PNG image" in result.stdout
    assert "says image, but its content is a PDF document" in result.stdout


def test_png_decompression_bomb(imported: Imported, out: Path, vault_dir: Path) -> None:
    bomb = samples.png_bomb()
    assert samples.png_size(bomb) == (40_000, 40_000) and len(bomb) < 2 << 20  # control
    sub = imported([("tiny.png", bomb, "image/png")])
    before = vault_state(vault_dir)
    done = desk_process(vault_dir, "export", sub.item.id[:8], "--to", str(out))
    assert done.code == 1
    assert done.stderr.splitlines() == [
        "tipline-desk: attachment 1 not exported: the converter's output broke the desk's "
        "limits, so it was thrown away: a page or image in it is larger than the desk converts"
    ]
    assert list(out.iterdir()) == [] and vault_state(vault_dir) == before
    assert done.max_rss_mib < 200 and done.seconds < 60


def test_office_zip_bomb(imported: Imported, out: Path, vault_dir: Path) -> None:
    bomb = samples.docx_bomb(256)
    assert samples.zip_unpacked_size(bomb) > 250 << 20 and len(bomb) < 4 << 20  # control
    sub = imported(
        [
            (
                "big.docx",
                bomb,
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            )
        ]
    )
    limits = {"TIPLINE_CONVERT_SECONDS": "30", "TIPLINE_CONVERT_MEMORY_MIB": "1024"}
    done = desk_process(vault_dir, "export", sub.item.id[:8], "--to", str(out), env=limits)
    assert done.code == 1, done.stdout
    (line,) = done.stderr.splitlines()
    assert line.startswith("tipline-desk: attachment 1 not exported: ")
    assert any(
        why in line for why in ("took too long", "more pages than", "failed on it", "damaged")
    )
    assert list(out.iterdir()) == []
    assert done.max_rss_mib < 200 and done.seconds < 30 + 30


def test_a_pdf_claiming_100000_pages(imported: Imported, out: Path, vault_dir: Path) -> None:
    data = samples.pdf_claiming_pages()
    assert b"/Count 100000" in data  # control
    sub = imported([("long.pdf", data, "application/pdf")])
    done = desk_process(vault_dir, "export", sub.item.id[:8], "--to", str(out))
    assert done.code == 1
    assert done.stderr.splitlines() == [
        "tipline-desk: attachment 1 not exported: the converter's output broke the desk's "
        "limits, so it was thrown away: it has more pages than the desk converts"
    ]
    assert list(out.iterdir()) == [] and done.max_rss_mib < 200


def test_the_memory_measurement_sees_a_large_process_and_only_its_own() -> None:
    """The control for every "desk peak RSS" above: VmHWM of the measured program counts what it
    touched (300 MiB here), and not the memory of the test process it was started from."""
    ballast = bytearray(b"x" * (300 << 20))  # this (pytest) process is now large
    code = (
        "import re, sys\nb = bytearray(b'y' * (int(sys.argv[1]) << 20))\n"
        "print(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1))"
    )
    import subprocess
    import sys

    def peak(mib: int) -> float:
        out = subprocess.run(
            [sys.executable, "-c", code, str(mib)], capture_output=True, text=True, check=True
        ).stdout
        return int(out) / 1024

    assert peak(300) > 290
    assert peak(1) < 100
    del ballast
