"""Transfer bundles between the server and the desk (docs/SPEC.md §8), streamed both ways.

A bundle is one file on a USB stick: a manifest, then each envelope with its checksum, then a
checksum of the whole. Writing yields chunks (the server streams a download from them) and reading
pulls records one at a time, so neither side ever holds more than a chunk of an envelope. The
checksums catch a failing stick; each envelope still authenticates itself when it is opened.

Standard library and PyNaCl only: the desk and the server both import this module.
"""

from __future__ import annotations

import datetime
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Final, TypeVar

import nacl.hashlib

from .crypto.encoding import (
    dump_json,
    expect_date,
    expect_header,
    expect_int,
    expect_label,
    expect_members,
    hexd,
    load_json,
)
from .crypto.errors import TiplineError

MAGIC: Final = b"TLBUNDLE"
VERSION: Final = 1
KIND_EXPORT: Final = 1
KIND_REPLY: Final = 2
MAX_BUNDLE_MANIFEST: Final = 16 * 1024 * 1024
MAX_BUNDLE_ITEMS: Final = 100_000
MAX_BUNDLE_ITEM: Final = 1 << 41
MAX_DESIGNATION: Final = 64
MAX_TRIAGE_UPDATE: Final = 1 << 16  # a sealed triage update (SPEC §8.5) is small
CHUNK: Final = 1 << 20
HASH_BYTES: Final = 32

_TYPES: Final = {KIND_EXPORT: "tipline-export-bundle", KIND_REPLY: "tipline-reply-bundle"}
_RECORD: Final = struct.Struct(">cQ")
_PREAMBLE_SIZE: Final = len(MAGIC) + 2


class BundleError(TiplineError):
    """this bundle cannot be read"""


@dataclass(frozen=True)
class ExportItem:
    """One submission in an export bundle (server → desk)."""

    id: str
    source_id: str
    source_designation: str
    received: str
    size: int


@dataclass(frozen=True)
class ReplyItem:
    """One reply in a reply bundle (desk → server)."""

    id: str
    source_id: str
    size: int


@dataclass(frozen=True)
class TriageItem:
    """One sealed triage update (SPEC §8.5), in either bundle kind; it names no item or
    source: which item it changes is inside the envelope."""

    id: str
    size: int
    source_id: str = ""  # none: lets code that reads ``item.source_id`` stay uniform


Item = ExportItem | ReplyItem | TriageItem
ItemT = TypeVar("ItemT", ExportItem, ReplyItem)


def _today() -> str:
    return datetime.datetime.now(datetime.UTC).date().isoformat()


def _item_json(item: Item) -> dict[str, object]:
    if isinstance(item, TriageItem):
        return {"id": item.id, "kind": "triage", "size": item.size}
    out: dict[str, object] = {"id": item.id, "source_id": item.source_id, "size": item.size}
    if isinstance(item, ExportItem):
        out["source_designation"] = item.source_designation
        out["received"] = item.received
    return out


def _check_kind(kind: int) -> None:
    if kind not in _TYPES:
        raise BundleError(f"unknown bundle kind {kind}")


def encode_manifest(kind: int, items: Sequence[Item], created: str | None = None) -> bytes:
    """The ``M`` record's data, checked by the same rules a reader applies."""
    _check_kind(kind)
    data = dump_json(
        {
            "type": _TYPES[kind],
            "v": 1,
            "created": created or _today(),
            "items": [_item_json(item) for item in items],
        }
    )
    parse_manifest(kind, data)  # a writer never makes a bundle its reader would refuse
    return data


def parse_manifest(kind: int, data: bytes) -> tuple[str, list[Item]]:
    """Parse and bound a bundle manifest: its creation date and its items, in order."""
    _check_kind(kind)
    what = "the bundle manifest"
    doc = load_json(data, MAX_BUNDLE_MANIFEST, BundleError, what)
    expect_header(doc, _TYPES[kind], BundleError, what)
    expect_members(doc, {"type", "v", "created", "items"}, BundleError, what)
    created = expect_date(doc["created"], BundleError, "the bundle's creation date").isoformat()
    raw = doc["items"]
    if not isinstance(raw, list) or len(raw) > MAX_BUNDLE_ITEMS:
        raise BundleError(f"the bundle must list at most {MAX_BUNDLE_ITEMS} items")
    items: list[Item] = []
    seen: set[str] = set()
    for n, entry in enumerate(raw):
        where = f"item {n + 1}"
        if not isinstance(entry, dict):
            raise BundleError(f"{where} is not a JSON object")
        if "kind" in entry:
            items.append(_triage_item(entry, where, seen))
            continue
        members = {"id", "source_id", "size"}
        if kind == KIND_EXPORT:
            members |= {"source_designation", "received"}
        expect_members(entry, members, BundleError, where)
        item_id = hexd(entry["id"], 16, BundleError, f"{where}'s id").hex()
        source_id = hexd(entry["source_id"], 16, BundleError, f"{where}'s source id").hex()
        size = expect_int(entry["size"], 1, MAX_BUNDLE_ITEM, BundleError, f"{where}'s size")
        if item_id in seen:
            raise BundleError(f"{where} repeats the id of an earlier item")
        seen.add(item_id)
        if kind == KIND_EXPORT:
            designation = expect_label(
                entry["source_designation"], MAX_DESIGNATION, BundleError, f"{where}'s source name"
            )
            received = expect_date(entry["received"], BundleError, f"{where}'s date").isoformat()
            items.append(ExportItem(item_id, source_id, designation, received, size))
        else:
            items.append(ReplyItem(item_id, source_id, size))
    return created, items


def _triage_item(entry: dict[str, object], where: str, seen: set[str]) -> TriageItem:
    expect_members(entry, {"id", "kind", "size"}, BundleError, where)
    if entry["kind"] != "triage":
        raise BundleError(f"{where} is of an unknown kind")
    item_id = hexd(entry["id"], 16, BundleError, f"{where}'s id").hex()
    size = expect_int(entry["size"], 1, MAX_TRIAGE_UPDATE, BundleError, f"{where}'s size")
    if item_id in seen:
        raise BundleError(f"{where} repeats the id of an earlier item")
    seen.add(item_id)
    return TriageItem(item_id, size)


def bundle_chunks(
    kind: int,
    items: Sequence[Item],
    open_item: Callable[[Item], BinaryIO],
    created: str | None = None,
) -> Iterator[bytes]:
    """Yield a whole bundle in pieces of at most about ``CHUNK`` bytes.

    ``open_item`` gives each envelope as a readable file; it must hold exactly ``item.size``
    bytes, or the bundle is abandoned with a BundleError rather than written wrong.
    """
    whole = nacl.hashlib.blake2b(digest_size=HASH_BYTES)

    def framed(kind_byte: bytes, data: bytes) -> bytes:
        out = _RECORD.pack(kind_byte, len(data)) + data
        whole.update(out)
        return out

    preamble = MAGIC + bytes([VERSION, kind])
    whole.update(preamble)
    yield preamble + framed(b"M", encode_manifest(kind, items, created))
    for item in items:
        head = _RECORD.pack(b"E", item.size)
        whole.update(head)  # the data itself is covered by the item's own H record
        yield head
        digest = nacl.hashlib.blake2b(digest_size=HASH_BYTES)
        left = item.size
        with open_item(item) as src:
            while left:
                chunk = src.read(min(CHUNK, left))
                if not chunk:
                    break
                digest.update(chunk)
                left -= len(chunk)
                yield chunk
            if left or src.read(1):
                raise BundleError(f"item {item.id} is not the size its listing gives")
        yield framed(b"H", digest.digest())
    yield _RECORD.pack(b"Z", HASH_BYTES) + whole.digest()


def write_bundle(
    dst: BinaryIO,
    kind: int,
    items: Sequence[Item],
    open_item: Callable[[Item], BinaryIO],
    created: str | None = None,
) -> int:
    """Write a whole bundle to ``dst``; returns the number of bytes written."""
    total = 0
    for chunk in bundle_chunks(kind, items, open_item, created):
        dst.write(chunk)
        total += len(chunk)
    return total


class BundleEntry:
    """One envelope of a bundle as it streams past: read it, then ``finish()``."""

    def __init__(self, reader: BundleReader, item: Item) -> None:
        self.item = item
        self._reader = reader
        self._left = item.size
        self._digest = nacl.hashlib.blake2b(digest_size=HASH_BYTES)
        self._final = b""
        self.ok: bool | None = None

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes of the envelope (all that is left if ``n`` < 0), b"" at its end."""
        if self.ok is not None:
            raise BundleError("this item was already finished")
        want = self._left if n < 0 else min(n, self._left)
        data = self._reader._read_exact(want, hashed=False)
        self._digest.update(data)
        self._left -= len(data)
        return data

    def chunks(self, size: int = CHUNK) -> Iterable[bytes]:
        """The rest of the envelope, in pieces of at most ``size`` bytes."""
        while chunk := self.read(size):
            yield chunk

    def finish(self) -> bool:
        """Skip what was not read and check the item's checksum; True when it matches."""
        if self.ok is None:
            for _ in self.chunks():
                pass
            expected = self._reader._record(b"H", HASH_BYTES, exact=True)
            self._final = self._digest.digest()
            self.ok = expected == self._final
        return self.ok

    @property
    def digest(self) -> bytes:
        """BLAKE2b-256 of the envelope as read (after ``finish()``; equal to its H record when
        ``ok``), so a reader that keeps the envelope need not hash it a second time."""
        if self.ok is None:
            raise BundleError("the item's digest is known only once it is finished")
        return self._final


class BundleReader:
    """Read a bundle of one kind from a stream, refusing anything SPEC §8 does not allow.

    Iterate to get each :class:`BundleEntry` in order. An entry whose checksum fails is
    reported by its ``finish()`` (the rest of the bundle may still be good); a bundle that is
    truncated, reordered, or has a wrong final checksum or bytes after it raises BundleError.
    """

    def __init__(self, src: BinaryIO, kind: int) -> None:
        _check_kind(kind)
        self._src = src
        self._whole = nacl.hashlib.blake2b(digest_size=HASH_BYTES)
        self._started = False
        preamble = self._read_exact(_PREAMBLE_SIZE, hashed=True)
        if preamble[: len(MAGIC)] != MAGIC:
            raise BundleError("this is not a Tipline bundle")
        if preamble[len(MAGIC)] != VERSION:
            raise BundleError(f"bundle version {preamble[len(MAGIC)]} is not supported")
        if preamble[len(MAGIC) + 1] != kind:
            wanted = "an export" if kind == KIND_EXPORT else "a reply"
            raise BundleError(f"this is not {wanted} bundle")
        self.kind = kind
        self.created, self.items = parse_manifest(
            kind, self._record(b"M", MAX_BUNDLE_MANIFEST, exact=False)
        )

    def _read_exact(self, n: int, *, hashed: bool) -> bytes:
        data = self._src.read(n) if n else b""
        while len(data) < n:
            more = self._src.read(n - len(data))
            if not more:
                raise BundleError("the bundle is truncated")
            data += more
        if hashed:
            self._whole.update(data)
        return data

    def _header(self, expected: bytes, bound: int) -> int:
        kind, length = _RECORD.unpack(self._read_exact(_RECORD.size, hashed=True))
        if kind != expected:
            name = kind.decode("latin-1") if kind.isalpha() else f"0x{kind.hex()}"
            raise BundleError(f"expected a {expected.decode()} record, found {name}")
        if length > bound:
            raise BundleError(f"a {expected.decode()} record is larger than {bound} bytes")
        return int(length)

    def _record(self, expected: bytes, bound: int, *, exact: bool) -> bytes:
        length = self._header(expected, bound)
        if exact and length != bound:
            raise BundleError(f"a {expected.decode()} record must be {bound} bytes")
        return self._read_exact(length, hashed=True)

    def __iter__(self) -> Iterator[BundleEntry]:
        if self._started:
            raise BundleError("a bundle can be read only once")
        self._started = True
        for item in self.items:
            length = self._header(b"E", MAX_BUNDLE_ITEM)
            if length != item.size:
                raise BundleError(f"item {item.id} is not the size the manifest gives")
            entry = BundleEntry(self, item)
            yield entry
            entry.finish()
        expected = self._whole.digest()
        kind, length = _RECORD.unpack(self._read_exact(_RECORD.size, hashed=False))
        if kind != b"Z" or length != HASH_BYTES:
            raise BundleError("the bundle does not end where its manifest says")
        if self._read_exact(HASH_BYTES, hashed=False) != expected:
            raise BundleError("the bundle's final checksum does not match: it was damaged")
        if self._src.read(1):
            raise BundleError("there are bytes after the end of the bundle")
