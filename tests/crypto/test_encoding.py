"""The strict decoders of docs/SPEC.md §1: each rule at its limit and one past it, with the
message a person reads when it is broken."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable

import pytest

from tipline.crypto import encoding
from tipline.crypto.encoding import (
    b64d,
    b64e,
    dump_json,
    expect_date,
    expect_header,
    expect_int,
    expect_label,
    expect_members,
    hexd,
    load_json,
)
from tipline.crypto.errors import TiplineError


class ProbeError(TiplineError):
    """probe"""


def detail(call: Callable[..., object], *args: object) -> str | None:
    """The detail of the ProbeError that ``call(*args)`` raises (its exact class, not a
    TypeError from calling something else)."""
    with pytest.raises(ProbeError) as info:
        call(*args)
    assert type(info.value) is ProbeError
    return info.value.detail


# base64


def test_b64d_accepts_canonical_base64_of_every_padding() -> None:
    for data in (b"", b"a", b"ab", b"abc", b"abcd", bytes(range(256))):
        assert b64d(b64e(data), None, ProbeError, "x") == data
        assert b64d(b64e(data), len(data), ProbeError, "x") == data


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (5, "field is not base64"),  # not a string at all
        (None, "field is not base64"),
        ("YWJj\u00e9", "field is not base64"),  # not ASCII
        ("YQ", "field is not canonical base64"),  # padding missing
        ("YQ=", "field is not canonical base64"),
        ("YR==", "field is not canonical base64"),  # stray bits after the last byte
        ("YW Jj", "field is not canonical base64"),  # a character outside the alphabet
        ("YW\nJj", "field is not canonical base64"),
        ("YW-j", "field is not canonical base64"),  # the URL-safe alphabet is not ours
        ("YW_j", "field is not canonical base64"),
        ("YWJj\n", "field is not canonical base64"),
        ("=YWJ", "field is not canonical base64"),
    ],
)
def test_b64d_refuses(text: object, message: str) -> None:
    assert detail(b64d, text, None, ProbeError, "field") == message


def test_b64d_checks_the_decoded_size_exactly() -> None:
    assert detail(b64d, b64e(b"abc"), 2, ProbeError, "salt") == "salt must be 2 bytes"
    assert detail(b64d, b64e(b"abc"), 4, ProbeError, "salt") == "salt must be 4 bytes"
    assert b64d(b64e(b"abc"), 3, ProbeError, "salt") == b"abc"


# hex


def test_hexd() -> None:
    assert hexd("00ff10", 3, ProbeError, "key_id") == b"\x00\xff\x10"
    message = "key_id must be 6 lowercase hex digits"
    for bad in ("00ff1", "00ff1000", "00FF10", "00fg10", " 00ff1", 5, None, b"00ff10"):
        assert detail(hexd, bad, 3, ProbeError, "key_id") == message, bad


# JSON


def test_load_json_size_limit_is_inclusive() -> None:
    doc = b'{"a":"' + b"x" * 10 + b'"}'
    assert load_json(doc, len(doc), ProbeError, "doc") == {"a": "x" * 10}
    assert detail(load_json, doc, len(doc) - 1, ProbeError, "doc") == (
        f"doc is larger than {len(doc) - 1} bytes"
    )


@pytest.mark.parametrize(
    ("data", "cause"),
    [
        (b'{"a":1,"a":2}', "duplicate key 'a'"),
        (b'{"a":1.5}', "numbers must be integers"),
        (b'{"a":1e3}', "numbers must be integers"),
        (b'{"a":NaN}', "NaN and Infinity are not JSON"),
        (b'{"a":Infinity}', "NaN and Infinity are not JSON"),
        (b'{"a":-Infinity}', "NaN and Infinity are not JSON"),
        (b'{"a":"\xff"}', None),  # not UTF-8
        (b"[" * 100_000 + b"]" * 100_000, None),  # too deep
        (b'{"a":1', None),
    ],
)
def test_load_json_refuses(data: bytes, cause: str | None) -> None:
    with pytest.raises(ProbeError) as info:
        load_json(data, 1 << 20, ProbeError, "doc")
    assert info.value.detail == "doc is not valid JSON"
    if cause is not None:  # the reason stays in the chain, for whoever reads the traceback
        assert str(info.value.__cause__) == cause


def test_load_json_wants_an_object() -> None:
    for data in (b"[]", b"1", b'"x"', b"null"):
        assert detail(load_json, data, 100, ProbeError, "doc") == "doc must be a JSON object"


def test_dump_json_is_canonical() -> None:
    # Sorted keys, no spaces, UTF-8 rather than \u escapes: the bytes that get signed and that
    # the JS twin writes too.
    value = {"b": [1, {"d": None, "c": True}], "a": "caf\u00e9 \u2603", "\u00e9": 0}
    assert dump_json(value) == '{"a":"café ☃","b":[1,{"c":true,"d":null}],"é":0}'.encode()
    assert json.loads(dump_json(value)) == value


def test_expect_members() -> None:
    expect_members({"a": 1, "b": 2}, {"a", "b"}, ProbeError, "doc")
    assert detail(expect_members, {"a": 1, "z": 2, "y": 3}, {"a"}, ProbeError, "doc") == (
        "doc: unknown y, z"
    )
    assert detail(expect_members, {"a": 1}, {"a", "c", "b"}, ProbeError, "doc") == (
        "doc: missing b, c"
    )
    assert detail(expect_members, {"a": 1, "z": 2}, {"b"}, ProbeError, "doc") == (
        "doc: unknown a, z; missing b"
    )


def test_expect_header() -> None:
    expect_header({"type": "t", "v": 1}, "t", ProbeError, "doc")
    for obj in (
        {"type": "t", "v": 2},
        {"type": "t", "v": True},
        {"type": "u", "v": 1},
        {"v": 1},
        {"type": "t"},
        {"type": "t", "v": "1"},
    ):
        assert detail(expect_header, obj, "t", ProbeError, "doc") == (
            "doc is not a version 1 t document"
        ), obj


def test_expect_int_bounds_are_inclusive() -> None:
    assert expect_int(3, 3, 7, ProbeError, "n") == 3
    assert expect_int(7, 3, 7, ProbeError, "n") == 7
    for bad in (2, 8, True, False, "5", 5.0, None):
        assert detail(expect_int, bad, 3, 7, ProbeError, "n") == (
            "n must be a whole number from 3 to 7"
        ), bad


def test_expect_label_bounds_and_controls() -> None:
    assert expect_label("a", 4, ProbeError, "label") == "a"
    assert expect_label("abcd", 4, ProbeError, "label") == "abcd"
    assert expect_label("\u00e9\u00e9\u00e9\u00e9", 4, ProbeError, "label") == "éééé"  # chars
    for bad in ("", "abcde", 5, None):
        assert detail(expect_label, bad, 4, ProbeError, "label") == (
            "label must be 1 to 4 characters"
        ), bad
    for bad in ("a\nb", "a\u202eb", "a\u2028", "\ud800", "a\x00"):
        assert detail(expect_label, bad, 4, ProbeError, "label") == (
            "label must not contain control characters"
        ), bad


def test_expect_date() -> None:
    assert expect_date("2026-11-30", ProbeError, "issued") == datetime.date(2026, 11, 30)
    for bad in (20261130, None, "2026-1-30", "2026-11-30T00:00", "26-11-30", " 2026-11-30"):
        assert detail(expect_date, bad, ProbeError, "issued") == (
            "issued must be a date as YYYY-MM-DD"
        ), bad
    for bad in ("2026-02-30", "2026-13-01", "2026-00-10"):
        assert detail(expect_date, bad, ProbeError, "issued") == "issued is not a real date"


def test_max_safe_integer_is_javascripts() -> None:
    assert encoding.MAX_SAFE_INTEGER == 9007199254740991
