"""Neutralising hostile text and making safe file names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tipline.desk.text import fold, neutralise, one_line, safe_filename


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
