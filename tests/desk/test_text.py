"""Neutralising hostile text and making safe file names."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tipline.desk.text import fold, neutralise, one_line, safe_filename, text_file


def test_escapes_are_shown_not_obeyed() -> None:
    assert neutralise("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert neutralise("over\rwrite") == "over\\x0dwrite"
    assert neutralise("csi\x9bm") == "csi\\x9bm"
    assert neutralise("exe\u202etxt") == "exe\\u202etxt"
    assert neutralise("zero\u200bwidth") == "zero\\u200bwidth"
    assert neutralise("line\u2028sep") == "line\\u2028sep"
    assert neutralise("two\nlines\tand tab") == "two\nlines    and tab"
    assert neutralise("\\x1b") == "\\\\x1b"  # a typed escape cannot pass for a neutralised one
    assert neutralise("ünïcödé ok 日本") == "ünïcödé ok 日本"


@given(st.text())
def test_neutralised_text_has_no_control_characters(text: str) -> None:
    out = neutralise(text)
    assert all(ch == "\n" or (ord(ch) >= 0x20 and not 0x7F <= ord(ch) < 0xA0) for ch in out)
    assert "\x1b" not in one_line(text, 40) and "\n" not in one_line(text, 40)


def test_one_line_and_fold() -> None:
    assert one_line("a\n\nb   c", 10) == "a b c"
    assert one_line("x" * 100, 10) == "x" * 9 + "…"
    assert fold("y" * 450, 200).split("\n") == ["y" * 200, "y" * 200, "y" * 50]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("/absolute/path.txt", "path.txt"),
        ("C:\\Windows\\system32\\cmd.exe", "cmd.exe"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("lpt1", "_lpt1"),
        ("..", "attachment"),
        (".bashrc", "bashrc"),
        ("a\x1b[31mb", "a_[31mb"),
        ("x\u202etxt.exe", "x_txt.exe"),
        ('what?*<>|":.doc', "what_______.doc"),
    ],
)
def test_safe_filename(name: str, expected: str) -> None:
    assert safe_filename(name, 0, "0123456789abcdef" * 2) == f"01234567-01-{expected}"


def test_safe_filename_bounds_length() -> None:
    name = safe_filename("é" * 200 + ".pdf", 2, "f" * 32)
    assert name.startswith("ffffffff-03-") and name.endswith(".pdf")
    assert len(name.encode()) <= 12 + 120


@given(st.text(min_size=1, max_size=300))
def test_safe_filename_is_never_a_path(name: str) -> None:
    out = safe_filename(name, 0, "a" * 32)
    assert "/" not in out and "\\" not in out and "\x00" not in out
    assert not out.startswith(".") and out not in (".", "..")


# Every format character (Cf: bidi embeddings, overrides and isolates, directional marks, zero-width
# characters, the tag block, interlinear annotation, ...), every control but newline and tab, the
# line and paragraph separators: each one, alone in a line of text, must come out as its escape.
# The list is built from the Unicode database, not written out, so a denylist that forgets one of
# them (three characters, say) fails here.
ALL = [chr(c) for c in range(sys.maxunicode + 1)]
FORMAT = [ch for ch in ALL if unicodedata.category(ch) == "Cf"]
CONTROLS = [ch for ch in ALL if unicodedata.category(ch) in ("Cc", "Zl", "Zp") and ch not in "\n\t"]
# The bidirectional controls by their Unicode bidi class, and the three implicit marks.
BIDI = [
    ch
    for ch in ALL
    if unicodedata.bidirectional(ch)
    in ("LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI")
] + ["\u200e", "\u200f", "\u061c"]
TAGS = [chr(c) for c in range(0xE0000, 0xE0080) if unicodedata.category(chr(c)) == "Cf"]


def shown(ch: str) -> str:
    code = ord(ch)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else (f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    )


def test_the_unicode_lists_are_what_they_claim() -> None:
    assert len(FORMAT) > 150 and len(TAGS) == 97 and len(BIDI) == 12
    assert {"\u202e", "\u2066", "\u2069", "\u200b", "\ufeff", "\U000e0001"} <= set(FORMAT)
    assert set(BIDI) <= set(FORMAT) and set(TAGS) <= set(FORMAT)


@pytest.mark.parametrize("kind", ["format", "controls", "bidi", "tags"])
def test_every_format_and_bidi_character_is_shown_escaped(kind: str) -> None:
    chars = {"format": FORMAT, "controls": CONTROLS, "bidi": BIDI, "tags": TAGS}[kind]
    wrong = [
        f"U+{ord(ch):04X}"
        for ch in chars
        if neutralise(f"a{ch}b") != f"a{shown(ch)}b"
        or neutralise(f"a{ch}b", keep_newlines=False) != f"a{shown(ch)}b"
        or one_line(f"a{ch}b", 40) != f"a{shown(ch)}b"
    ]
    assert wrong == []
    # All of them at once, as a hostile name would mix them.
    mixed = "x".join(chars)
    assert neutralise(mixed) == "x".join(shown(ch) for ch in chars)


def test_text_files_drop_every_bidi_control() -> None:
    kept = [f"U+{ord(ch):04X}" for ch in BIDI if text_file(f"a{ch}b") != "ab"]
    assert kept == []
