"""Making submission text safe to show, and attachment names safe to write.

Everything a source wrote is hostile until shown otherwise: it may carry terminal escape sequences
that rewrite the screen, bidirectional overrides that reverse a file extension, or a name like
``../../.bashrc``. Nothing here trusts it.
"""

from __future__ import annotations

import re
import unicodedata

# Cc: C0/C1 controls (ESC, CSI, BEL, ...); Cf: format characters (bidi overrides, zero-width);
# Zl/Zp: line and paragraph separators; Cs: lone surrogates; Co/Cn: private use and unassigned.
_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
_RESERVED = re.compile(r"\A(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)\Z", re.I)
MAX_SAFE_NAME = 120


def _escape(ch: str) -> str:
    code = ord(ch)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else (f"\\U{code:08x}")
    )


def neutralise(text: str, keep_newlines: bool = True) -> str:
    """``text`` with every control, format and escape character shown as a visible ``\\xNN``.

    Newlines (and tabs, as spaces) are kept when asked, so a message still reads as paragraphs;
    a carriage return is always escaped, since it lets text overwrite what came before it.
    """
    plain = text.replace("\n", "") if keep_newlines else text
    if plain.isprintable() and "\\" not in plain:
        return text  # the common case, checked in C: nothing to escape
    out = []
    for ch in text:
        if ch == "\n" and keep_newlines:
            out.append(ch)
        elif ch == "\t":
            out.append("    " if keep_newlines else " ")
        elif ch == "\\":
            out.append("\\\\")  # so an escaped form in the text cannot pass for a real one
        elif unicodedata.category(ch) in _HIDDEN:
            out.append(_escape(ch))
        else:
            out.append(ch)
    return "".join(out)


def one_line(text: str, width: int) -> str:
    """The first ``width`` characters of ``text`` on one line, neutralised, for lists."""
    flat = neutralise(text[: width * 4].replace("\n", " "), keep_newlines=False)
    flat = " ".join(flat.split())
    return flat if len(flat) <= width else flat[: max(width - 1, 0)] + "…"


def fold(text: str, width: int = 200) -> str:
    """Hard-wrap lines longer than ``width`` so that megabytes without a newline stay readable."""
    lines = []
    for line in text.split("\n"):
        if len(line) <= width:
            lines.append(line)
        else:
            lines.extend(line[i : i + width] for i in range(0, len(line), width))
    return "\n".join(lines)


def safe_filename(name: str, index: int, item_id: str) -> str:
    """A file name for an exported attachment, made by the desk, never a path from the envelope.

    It keeps only the last component of what the source called it, drops controls, separators
    and leading dots, refuses reserved device names, bounds the length, and is prefixed by the
    item id and attachment number, so two attachments never collide and nothing is hidden.
    """
    base = re.split(r"[/\\]", name)[-1]
    cleaned = []
    for ch in unicodedata.normalize("NFC", base):
        if unicodedata.category(ch) in _HIDDEN or ch in '<>:"|?*':
            cleaned.append("_")
        else:
            cleaned.append(ch)
    text = "".join(cleaned).strip().strip(".").strip()
    stem = text.split(".")[0]
    if not text or _RESERVED.match(stem.strip()):
        text = f"_{text}" if text else "attachment"
    encoded = text.encode("utf-8")
    if len(encoded) > MAX_SAFE_NAME:
        suffix = ""
        if "." in text and len(text.rsplit(".", 1)[1]) <= 10:
            suffix = "." + text.rsplit(".", 1)[1]
        head = encoded[: MAX_SAFE_NAME - len(suffix.encode())].decode("utf-8", "ignore")
        text = head + suffix
    return f"{item_id[:8]}-{index + 1:02d}-{text}"


# Terminal escape sequences (ECMA-48): CSI, the string commands ended by ST or BEL (OSC, DCS,
# SOS, PM, APC), and the short ESC forms. Each is removed whole where it is well formed; what is
# left once the ESC and C1 characters are gone cannot act on a terminal, so a string command is
# never followed past its line (an unterminated one must not swallow the rest of the text).
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]{0,64}[\x20-\x2f]{0,8}[\x40-\x7e]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]{0,4096}(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[\x20-\x2f]{0,8}[\x30-\x7e]?"
)
# What a text file keeps out: C0 and C1 controls but tab and newline, the bidirectional controls
# that reorder what is shown (a name read backwards, "Trojan Source"), a byte-order mark, lone
# surrogates. Line and paragraph separators become newlines.
_UNWANTED = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff"
    "\ud800-\udfff\u2028\u2029]"
)


def text_file(text: str) -> str:
    """``text`` for a plain-text file: escape sequences, control characters and bidirectional
    controls removed, line breaks kept (and made ``\\n``), tabs kept.

    Unlike ``neutralise``, which shows such characters for triage, this drops them: the file is
    for reading and quoting, and must not act on a terminal that prints it (``cat``).
    """
    text = _ESCAPES.sub("", text.replace("\r\n", "\n"))
    return _UNWANTED.sub(lambda m: "\n" if m.group() in "\u2028\u2029" else "", text)
