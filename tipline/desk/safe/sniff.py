"""What an attachment really is, judged by its first bytes, never by its name.

A source's browser names the file and claims a type; both may lie (``invoice.pdf`` holding a
script, ``photo.jpg`` holding a PDF). The desk looks only at fixed byte signatures in the first
``HEAD`` bytes (no parsing), picks the way to make a safe copy from what it finds, names the copy
with an extension of its own, and says so when the name or the claimed type disagreed.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass

HEAD = 64 << 10  # bytes of the start of an attachment kept for this

# How a safe copy is made: by the converter ("pdf", "office", "image"), as text, by metadata
# removal only ("media": sound and video are never converted), or not at all ("other").
ROUTES = ("pdf", "office", "image", "text", "media", "other")


@dataclass(frozen=True)
class Kind:
    """What the content is: the route to a safe copy, an extension, and words for people."""

    route: str
    ext: str
    label: str

    @property
    def converter_kind(self) -> str:
        """The KIND argument of the first stage (stage1.py)."""
        return "pdf" if self.route == "pdf" else f"{self.route}.{self.ext}"


PDF = Kind("pdf", "pdf", "PDF document")
UNKNOWN = Kind("other", "bin", "file of unknown kind")
_SIMPLE: tuple[tuple[bytes, int, Kind], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, Kind("image", "png", "PNG image")),
    (b"\xff\xd8\xff", 0, Kind("image", "jpg", "JPEG image")),
    (b"GIF87a", 0, Kind("image", "gif", "GIF image")),
    (b"GIF89a", 0, Kind("image", "gif", "GIF image")),
    (b"II*\x00", 0, Kind("image", "tiff", "TIFF image")),
    (b"MM\x00*", 0, Kind("image", "tiff", "TIFF image")),
    (b"BM", 0, Kind("image", "bmp", "BMP image")),
    (b"{\\rtf", 0, Kind("office", "rtf", "RTF document")),
    (b"ID3", 0, Kind("media", "mp3", "MP3 audio")),
    (b"fLaC", 0, Kind("media", "flac", "FLAC audio")),
    (b"OggS", 0, Kind("media", "ogg", "Ogg audio")),
    (b"0&\xb2u\x8ef\xcf\x11", 0, Kind("media", "wmv", "Windows Media video")),
)
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ODF = {
    b"application/vnd.oasis.opendocument.text": Kind("office", "odt", "OpenDocument text"),
    b"application/vnd.oasis.opendocument.spreadsheet": Kind(
        "office", "ods", "OpenDocument spreadsheet"
    ),
    b"application/vnd.oasis.opendocument.presentation": Kind(
        "office", "odp", "OpenDocument presentation"
    ),
    b"application/vnd.oasis.opendocument.graphics": Kind("office", "odg", "OpenDocument drawing"),
}
_OOXML = (
    (b"word/", Kind("office", "docx", "Word document")),
    (b"xl/", Kind("office", "xlsx", "Excel spreadsheet")),
    (b"ppt/", Kind("office", "pptx", "PowerPoint presentation")),
)
_SVG = re.compile(
    rb"\A(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*>\s*|<!--.*?-->\s*|<!DOCTYPE[^>]*>\s*)*<svg", re.S
)


def sniff(head: bytes, claimed_name: str = "") -> Kind:
    """The kind of an attachment whose first bytes are ``head``."""
    for magic, offset, kind in _SIMPLE:
        if head[offset : offset + len(magic)] == magic:
            return kind
    if b"%PDF-" in head[:1024]:  # readers accept a PDF header anywhere in the first kilobyte
        return PDF
    if head[:4] == b"RIFF" and len(head) >= 12:
        return {
            b"WAVE": Kind("media", "wav", "WAV audio"),
            b"AVI ": Kind("media", "avi", "AVI video"),
            b"WEBP": Kind("other", "webp", "WebP image (not converted by this desk)"),
        }.get(head[8:12], UNKNOWN)
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return Kind("media", "aiff", "AIFF audio")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B "):
            return Kind("media", "m4a", "MPEG-4 audio")
        return Kind("media", "mp4", "MPEG-4 video")
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return Kind("media", "mp3", "MP3 audio")
    if head[:4] == b"PK\x03\x04":
        return _zip_kind(head)
    if head[:8] == _OLE:
        ext = claimed_name.rpartition(".")[2].lower()
        return Kind("office", ext if ext in ("doc", "xls", "ppt") else "doc", "Office document")
    if _SVG.match(head[:4096]):
        return Kind("image", "svg", "SVG image")
    if _is_text(head):
        return Kind("text", "txt", "text")
    return UNKNOWN


def _zip_kind(head: bytes) -> Kind:
    """A ZIP's kind from the names of its first members (OOXML, ODF, or another archive)."""
    if head[30:38] == b"mimetype":
        for mime, kind in _ODF.items():
            if head[38 : 38 + len(mime)] == mime:
                return kind
    for match in re.finditer(rb"PK\x03\x04", head):
        at = match.start()
        if at + 30 > len(head):
            break
        size = int.from_bytes(head[at + 26 : at + 28], "little")
        name = head[at + 30 : at + 30 + size]
        for prefix, kind in _OOXML:
            if name.startswith(prefix):
                return kind
    return Kind("other", "zip", "ZIP archive (not unpacked by the desk)")


def _is_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return head[:2] in (b"\xff\xfe", b"\xfe\xff") and len(head) % 2 == 0
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # only a character cut at the end of the sample
    return True


def claimed_route(name: str, claimed_type: str) -> str | None:
    """The route that the name's extension (or else the claimed type) suggests, if any."""
    guessed = mimetypes.guess_type(name, strict=False)[0] or ""
    for mime in (guessed, claimed_type.lower().strip()):
        if not mime:
            continue
        if mime == "application/pdf":
            return "pdf"
        if mime.startswith("image/"):
            return "image"
        if mime.startswith(("audio/", "video/")):
            return "media"
        if mime.startswith("text/"):
            return "text"
        if "officedocument" in mime or "opendocument" in mime or "msword" in mime:
            return "office"
        if "ms-excel" in mime or "ms-powerpoint" in mime or mime == "application/rtf":
            return "office"
    return None


def disagreement(kind: Kind, name: str, claimed_type: str) -> str | None:
    """One sentence when the name or claimed type says something other than the content."""
    said = claimed_route(name, claimed_type)
    if said is None or said == kind.route:
        return None
    return (
        f"its name or claimed type says {said}, but its content is a {kind.label}: "
        f"it was treated as what it is"
    )
