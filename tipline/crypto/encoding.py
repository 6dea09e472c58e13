"""Strict decoders for the encodings in docs/SPEC.md §1: base64, hex, bounded JSON, dates.

Parsing lives here and holds no cryptography, so every format module can share the same rules.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from .errors import TiplineError

_B64 = re.compile(rb"\A(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\Z")
_HEX = re.compile(r"\A(?:[0-9a-f]{2})*\Z")
_DATE = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")
_CONTROL = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})  # Cs: lone surrogates
MAX_SAFE_INTEGER = (1 << 53) - 1


def b64e(data: bytes) -> str:
    """Standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def b64d(text: object, size: int | None, error: type[TiplineError], what: str) -> bytes:
    """Decode canonical standard base64, optionally of an exact decoded size."""
    if not isinstance(text, str) or not text.isascii():
        raise error(f"{what} is not base64")
    raw = text.encode("ascii")
    if not _B64.match(raw):
        raise error(f"{what} is not canonical base64")
    try:
        data = base64.b64decode(raw, validate=True)
    except binascii.Error as exc:
        raise error(f"{what} is not base64") from exc
    if b64e(data).encode("ascii") != raw:
        raise error(f"{what} is not canonical base64")
    if size is not None and len(data) != size:
        raise error(f"{what} must be {size} bytes")
    return data


def hexd(text: object, size: int, error: type[TiplineError], what: str) -> bytes:
    """Decode lowercase hex of an exact decoded size."""
    if not isinstance(text, str) or len(text) != 2 * size or not _HEX.match(text):
        raise error(f"{what} must be {2 * size} lowercase hex digits")
    return bytes.fromhex(text)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_floats(_: str) -> float:
    raise ValueError("numbers must be integers")


def _no_constants(_: str) -> float:
    raise ValueError("NaN and Infinity are not JSON")


def load_json(data: bytes, limit: int, error: type[TiplineError], what: str) -> dict[str, Any]:
    """Parse a UTF-8 JSON object of at most ``limit`` bytes, refusing duplicates and floats."""
    if len(data) > limit:
        raise error(f"{what} is larger than {limit} bytes")
    try:
        value = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_float=_no_floats,
            parse_constant=_no_constants,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise error(f"{what} is not valid JSON") from exc
    if not isinstance(value, dict):
        raise error(f"{what} must be a JSON object")
    return value


def dump_json(value: Mapping[str, Any]) -> bytes:
    """Serialise compactly with sorted keys (readers do not depend on the order)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def expect_members(
    obj: Mapping[str, Any], members: set[str], error: type[TiplineError], what: str
) -> None:
    """Require exactly these members: none unknown (a typo, a newer format), none missing."""
    keys = set(obj)
    if keys != members:
        extra, missing = sorted(keys - members), sorted(members - keys)
        parts = [f"unknown {', '.join(extra)}"] if extra else []
        parts += [f"missing {', '.join(missing)}"] if missing else []
        raise error(f"{what}: {'; '.join(parts)}")


def expect_header(obj: Mapping[str, Any], type_: str, error: type[TiplineError], what: str) -> None:
    """Check the ``type`` and ``v`` members every Tipline JSON document starts with."""
    if obj.get("type") != type_ or obj.get("v") != 1 or isinstance(obj.get("v"), bool):
        raise error(f"{what} is not a version 1 {type_} document")


def expect_int(value: object, low: int, high: int, error: type[TiplineError], what: str) -> int:
    """An integer (not a bool) within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise error(f"{what} must be a whole number from {low} to {high}")
    return value


def expect_label(value: object, max_chars: int, error: type[TiplineError], what: str) -> str:
    """A non-empty string of at most ``max_chars`` code points with no control characters."""
    if not isinstance(value, str) or not 1 <= len(value) <= max_chars:
        raise error(f"{what} must be 1 to {max_chars} characters")
    if any(unicodedata.category(ch) in _CONTROL for ch in value):
        raise error(f"{what} must not contain control characters")
    return value


def expect_date(value: object, error: type[TiplineError], what: str) -> datetime.date:
    """A ``YYYY-MM-DD`` date."""
    if not isinstance(value, str) or not _DATE.match(value):
        raise error(f"{what} must be a date as YYYY-MM-DD")
    try:
        return datetime.date.fromisoformat(value)
    except ValueError as exc:
        raise error(f"{what} is not a real date") from exc
