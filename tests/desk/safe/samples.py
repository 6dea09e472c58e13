"""Hostile samples, made here by the tests themselves, and the parsers that look inside them.

Every check used on a safe copy is also run on the sample it came from (the positive control):
a check that cannot find the hostile part in the input proves nothing about the output.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import tempfile
import zipfile
import zlib
from pathlib import Path

from PIL import Image

VISIBLE = "HOSTILE SAMPLE VISIBLE TEXT"
AUTHOR = "Jane Q Source"
# What must not survive in a PDF: scripts, actions, attachments, links, forms, metadata.
PDF_HOSTILE_NAMES = (
    "/JavaScript",
    "/JS",
    "/OpenAction",
    "/AA",
    "/Launch",
    "/EmbeddedFile",
    "/EmbeddedFiles",
    "/Filespec",
    "/URI",
    "/AcroForm",
    "/XFA",
    "/Annots",
    "/Metadata",
    "/RichMedia",
)


# --- PDF ---------------------------------------------------------------------------------------


def pdf(objects: list[bytes], info: bytes | None = None, root: int = 1) -> bytes:
    """A PDF file of ``objects`` (numbered from 1) with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    trailer = b"/Size %d /Root %d 0 R" % (len(objects) + 1, root)
    if info is not None:
        trailer += b" /Info " + info
    out += b"trailer\n<<" + trailer + b">>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def text_page_objects(pages: int, first: int, parent: int, font: int) -> list[bytes]:
    """``pages`` pages of visible text, as objects numbered from ``first``."""
    objects = []
    for n in range(pages):
        content = b"BT /F1 28 Tf 60 700 Td (%s page %d) Tj ET" % (VISIBLE.encode(), n + 1)
        number = first + 2 * n
        objects.append(
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << /Font << "
            b"/F1 %d 0 R >> >> /Contents %d 0 R >>" % (parent, font, number + 1)
        )
        objects.append(stream(content))
    return objects


def plain_pdf(pages: int = 2) -> bytes:
    """A harmless PDF of ``pages`` pages of text (the benchmark's and the controls' input)."""
    kids = b" ".join(b"%d 0 R" % (4 + 2 * n) for n in range(pages))
    return pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            *text_page_objects(pages, 4, 2, 3),
        ]
    )


XMP = (
    b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    b'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator><rdf:Seq><rdf:li>'
    + AUTHOR.encode()
    + b"</rdf:li></rdf:Seq></dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>"
    b'<?xpacket end="w"?>'
)


def hostile_pdf() -> bytes:
    """A PDF with JavaScript run on opening, an embedded file, a launch action in a link,
    XMP metadata and an author in its document information."""
    return pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R /Metadata 6 0 R /OpenAction 7 0 R"
            b" /Names << /JavaScript << /Names [(init) 7 0 R] >>"
            b" /EmbeddedFiles << /Names [(payload.exe) 8 0 R] >> >> >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1"
            b" 5 0 R >> >> /Contents 4 0 R /Annots [10 0 R] /AA << /O 7 0 R >> >>",
            stream(b"BT /F1 28 Tf 60 700 Td (%s) Tj ET" % VISIBLE.encode()),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            stream(XMP, b"/Type /Metadata /Subtype /XML "),
            b"<< /S /JavaScript /JS (app.alert('pwned'); this.exportDataObject({cName:"
            b" 'payload.exe', nLaunch: 2});) >>",
            b"<< /Type /Filespec /F (payload.exe) /EF << /F 9 0 R >> >>",
            stream(b"MZ this stands for an executable", b"/Type /EmbeddedFile "),
            b"<< /Type /Annot /Subtype /Link /Rect [0 0 612 792] /A << /S /Launch"
            b" /F (payload.exe) /Win << /F (cmd.exe) /P (/c calc) >> >> >>",
            b"<< /Author (%s) /Producer (Evil Producer 1.0) /Creator (SourceLaptop) >>"
            % AUTHOR.encode(),
        ],
        info=b"11 0 R",
    )


def pdf_claiming_pages(count: int = 100_000) -> bytes:
    """One real page, listed ``count`` times by a page tree that claims ``count`` pages, in a
    file with as many (empty) objects, so that readers believe the count (5 MB)."""
    return pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b"4 0 R " * count, count),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            *text_page_objects(1, 4, 2, 3),
            *[b"null"] * count,
        ]
    )


def pdf_tokens(path_or_bytes: Path | bytes) -> str:
    """The PDF's objects as text, every stream uncompressed (qpdf's QDF form)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.pdf"
        if isinstance(path_or_bytes, bytes):
            path.write_bytes(path_or_bytes)
        else:
            path = path_or_bytes
        done = subprocess.run(
            ["qpdf", "--qdf", "--object-streams=disable", "--decode-level=all", str(path), "-"],
            capture_output=True,
            check=False,
        )
    assert done.returncode in (0, 3), done.stderr
    return done.stdout.decode("latin-1")


def pdf_hostile_parts(path_or_bytes: Path | bytes) -> set[str]:
    """Which hostile names and which metadata appear anywhere in the PDF."""
    text = pdf_tokens(path_or_bytes)
    found = {
        name
        for name in PDF_HOSTILE_NAMES
        if f"{name} " in text
        or f"{name}\n" in text
        or f"{name}<" in text
        or f"{name}(" in text
        or f"{name}[" in text
    }
    for marker in (AUTHOR, "Evil Producer", "SourceLaptop", "payload.exe", "app.alert"):
        if marker in text:
            found.add(marker)
    if "/Info" in text:
        found.add("/Info")
    return found


def pdf_fonts(path: Path) -> list[str]:
    """The fonts a PDF uses (pdffonts), one line each: none for pixels only."""
    done = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True)
    return done.stdout.splitlines()[2:]


def pdf_text(path: Path) -> str:
    done = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True)
    return done.stdout


def pdf_images(path: Path) -> list[str]:
    """One line per image (pdfimages -list)."""
    done = subprocess.run(
        ["pdfimages", "-list", str(path)], capture_output=True, text=True, check=True
    )
    return done.stdout.splitlines()[2:]


# --- images ------------------------------------------------------------------------------------


def gps_jpeg() -> bytes:
    """A photo carrying where it was taken and with what camera."""
    image = Image.new("RGB", (320, 240), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0x0110] = "Model-X"  # Model
    exif[0xA431] = "SERIAL-1234567"  # BodySerialNumber (Exif IFD, kept in IFD0 by Pillow)
    exif[0x8825] = {1: "N", 2: (55.0, 45.0, 21.0), 3: "E", 4: (37.0, 37.0, 4.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def exif_fields(data: bytes) -> dict[str, object]:
    """Every metadata field exiftool finds (its own file-system fields left out)."""
    done = subprocess.run(["exiftool", "-json", "-"], input=data, capture_output=True, check=True)
    fields = json.loads(done.stdout)[0]
    return {
        k: v
        for k, v in fields.items()
        if not k.startswith(("File", "SourceFile", "ExifTool", "Directory"))
    }


def png_chunks(data: bytes) -> list[bytes]:
    """The chunk types of a PNG, in order (checking the signature and every length)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    assert pos == len(data)
    return chunks


def svg_with_external_reference(url: str) -> bytes:
    return (
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
        b'xmlns:xlink="http://www.w3.org/1999/xlink" width="200" height="100">'
        b'<rect width="200" height="100" fill="#08f"/>'
        b'<image xlink:href="' + url.encode() + b'/beacon.png" width="50" height="50"/>'
        b'<image href="' + url.encode() + b'/second.png" x="60" width="50" height="50"/>'
        b'<image href="file:///etc/passwd" x="120" width="50" height="50"/></svg>'
    )


def png_bomb(side: int = 40_000) -> bytes:
    """A small PNG that claims ``side`` x ``side`` pixels (1 bit deep, all zero)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    row = bytes(1 + side // 8)
    packer = zlib.compressobj(1)
    rows = row * 1000
    idat = b"".join(packer.compress(rows) for _ in range(side // 1000)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def png_size(data: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# --- office documents ---------------------------------------------------------------------------

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/>'
    '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.wordprocessingml.document.main+xml"/>'
    '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-'
    'package.core-properties+xml"/></Types>'
)
RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="word/document.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/'
    'metadata/core-properties" Target="docProps/core.xml"/></Relationships>'
)
DOC_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId9" Type="http://schemas.microsoft.com/office/2006/relationships/'
    'vbaProject" Target="vbaProject.bin"/></Relationships>'
)
CORE = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
    'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/">'
    f"<dc:creator>{AUTHOR}</dc:creator><cp:lastModifiedBy>{AUTHOR}</cp:lastModifiedBy>"
    "</cp:coreProperties>"
)
MACRO = b'Attribute VB_Name = "ThisDocument"\nSub AutoOpen()\nShell "calc.exe"\nEnd Sub\n'


def document_xml(body: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{W}">'
        f"<w:body>{body}</w:body></w:document>"
    )


def hostile_docx() -> bytes:
    """A Word document with a macro project, an author, and tracked changes by that author."""
    body = (
        f"<w:p><w:r><w:t>{VISIBLE}</w:t></w:r></w:p>"
        f'<w:p><w:ins w:id="1" w:author="{AUTHOR}" w:date="2026-01-01T00:00:00Z"><w:r>'
        "<w:t>inserted by the source</w:t></w:r></w:ins>"
        f'<w:del w:id="2" w:author="{AUTHOR}" w:date="2026-01-01T00:00:00Z"><w:r>'
        "<w:delText>DELETED-SECRET-DRAFT</w:delText></w:r></w:del></w:p>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", CONTENT_TYPES)
        z.writestr("_rels/.rels", RELS)
        z.writestr("word/document.xml", document_xml(body))
        z.writestr("word/_rels/document.xml.rels", DOC_RELS)
        z.writestr("word/vbaProject.bin", MACRO)
        z.writestr("docProps/core.xml", CORE)
    return out.getvalue()


def docx_hostile_parts(data: bytes) -> set[str]:
    """Which of the hostile parts a DOCX still holds (unzipped and read as text)."""
    found: set[str] = set()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for name in z.namelist():
            if "vbaproject" in name.lower():
                found.add("macro")
            text = z.read(name).decode("utf-8", "replace")
            if AUTHOR in text:
                found.add("author")
            if "<w:ins " in text or "<w:del " in text or "DELETED-SECRET-DRAFT" in text:
                found.add("tracked changes")
            if "AutoOpen" in text:
                found.add("macro")
    return found


def docx_bomb(megabytes: int) -> bytes:
    """A DOCX of a few MiB whose text unpacks to ``megabytes`` MiB (about 100,000 pages each
    hundred MiB once laid out)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("[Content_Types].xml", CONTENT_TYPES)
        z.writestr("_rels/.rels", RELS)
        with z.open("word/document.xml", "w", force_zip64=True) as f:
            head, tail = document_xml("|").split("|")
            f.write(head.encode())
            paragraph = b"<w:p><w:r><w:t>" + b"A" * 1000 + b"</w:t></w:r></w:p>"
            block = paragraph * ((1 << 20) // len(paragraph))
            for _ in range(megabytes):
                f.write(block)
            f.write(tail.encode())
    return out.getvalue()


def zip_unpacked_size(data: bytes) -> int:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return sum(i.file_size for i in z.infolist())
