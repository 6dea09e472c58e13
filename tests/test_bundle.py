"""Transfer bundles (docs/SPEC.md §8): round trips, and every way a stick can damage one."""

from __future__ import annotations

import io
import secrets
import struct
from collections.abc import Sequence

import nacl.hashlib
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tipline.bundle import (
    CHUNK,
    KIND_EXPORT,
    KIND_REPLY,
    MAX_BUNDLE_MANIFEST,
    BundleError,
    BundleReader,
    ExportItem,
    Item,
    ReplyItem,
    bundle_chunks,
    encode_manifest,
    write_bundle,
)
from tipline.crypto.encoding import dump_json


def export_items(sizes: Sequence[int]) -> tuple[list[Item], dict[str, bytes]]:
    items: list[Item] = []
    data: dict[str, bytes] = {}
    for size in sizes:
        item = ExportItem(
            secrets.token_hex(16), secrets.token_hex(16), "tidy otter", "2026-11-24", size
        )
        items.append(item)
        data[item.id] = secrets.token_bytes(size)
    return items, data


def make(kind: int, items: Sequence[Item], data: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    n = write_bundle(out, kind, items, lambda item: io.BytesIO(data[item.id]), "2026-11-24")
    assert n == len(out.getvalue())
    return out.getvalue()


def read_all(blob: bytes, kind: int = KIND_EXPORT) -> tuple[dict[str, bytes], dict[str, bool]]:
    reader = BundleReader(io.BytesIO(blob), kind)
    got: dict[str, bytes] = {}
    ok: dict[str, bool] = {}
    for entry in reader:
        got[entry.item.id] = b"".join(entry.chunks(4096))
        ok[entry.item.id] = entry.finish()
    return got, ok


def test_export_round_trip_streams_items_larger_than_a_chunk() -> None:
    items, data = export_items([1, 1000, CHUNK * 2 + 17])
    blob = make(KIND_EXPORT, items, data)
    reader = BundleReader(io.BytesIO(blob), KIND_EXPORT)
    assert reader.created == "2026-11-24"
    assert reader.items == items
    got, ok = read_all(blob)
    assert got == data
    assert all(ok.values())


def test_reply_round_trip_and_kinds_are_not_interchangeable() -> None:
    items: list[Item] = [ReplyItem(secrets.token_hex(16), secrets.token_hex(16), 300)]
    data = {items[0].id: secrets.token_bytes(300)}
    blob = make(KIND_REPLY, items, data)
    assert read_all(blob, KIND_REPLY)[0] == data
    with pytest.raises(BundleError, match="not an export bundle"):
        BundleReader(io.BytesIO(blob), KIND_EXPORT)


def test_chunks_are_bounded_so_a_server_can_stream_them() -> None:
    items, data = export_items([CHUNK * 3])
    pieces = list(bundle_chunks(KIND_EXPORT, items, lambda i: io.BytesIO(data[i.id])))
    assert max(len(p) for p in pieces) <= CHUNK


def test_unread_entries_are_skipped_and_still_checked() -> None:
    items, data = export_items([10, 20, 30])
    blob = make(KIND_EXPORT, items, data)
    entries = list(BundleReader(io.BytesIO(blob), KIND_EXPORT))
    assert [e.ok for e in entries] == [True, True, True]


def test_a_damaged_envelope_is_reported_and_the_others_survive() -> None:
    items, data = export_items([100, 100])
    blob = bytearray(make(KIND_EXPORT, items, data))
    first = blob.find(data[items[0].id])
    blob[first + 50] ^= 1
    got, ok = read_all(bytes(blob))
    assert ok == {items[0].id: False, items[1].id: True}
    assert got[items[1].id] == data[items[1].id]


def test_a_damaged_checksum_record_fails_the_whole_bundle() -> None:
    items, data = export_items([100])
    blob = bytearray(make(KIND_EXPORT, items, data))
    h_at = blob.find(data[items[0].id]) + 100 + 9
    blob[h_at] ^= 1
    with pytest.raises(BundleError, match="final checksum"):
        read_all(bytes(blob))


def test_a_rewritten_manifest_is_caught_by_the_final_checksum() -> None:
    items, data = export_items([100])
    blob = make(KIND_EXPORT, items, data)
    other = ExportItem(items[0].id, secrets.token_hex(16), "tidy otter", "2026-11-24", 100)
    forged = blob.replace(items[0].source_id.encode(), other.source_id.encode())
    assert forged != blob
    with pytest.raises(BundleError, match="final checksum"):
        read_all(forged)


@pytest.mark.parametrize("cut", [0, 5, 10, 14, 30, -40, -33, -32, -1])
def test_truncation_anywhere_is_refused(cut: int) -> None:
    items, data = export_items([64])
    blob = make(KIND_EXPORT, items, data)
    with pytest.raises(BundleError, match=r"truncated|not a Tipline bundle|does not end"):
        read_all(blob[:cut])


def test_every_truncation_of_a_small_bundle_is_refused() -> None:
    items, data = export_items([3, 5])
    blob = make(KIND_EXPORT, items, data)
    for cut in range(len(blob)):
        with pytest.raises(BundleError):
            read_all(blob[:cut])


def test_trailing_bytes_are_refused() -> None:
    items, data = export_items([8])
    with pytest.raises(BundleError, match="bytes after the end"):
        read_all(make(KIND_EXPORT, items, data) + b"\0")


def test_bad_magic_version_and_record_types() -> None:
    items, data = export_items([8])
    blob = make(KIND_EXPORT, items, data)
    with pytest.raises(BundleError, match="not a Tipline bundle"):
        read_all(b"X" + blob[1:])
    with pytest.raises(BundleError, match="version 2"):
        read_all(blob[:8] + b"\x02" + blob[9:])
    with pytest.raises(BundleError, match="expected a M record, found Q"):
        read_all(blob[:10] + b"Q" + blob[11:])


def test_oversize_manifest_length_is_refused_before_reading() -> None:
    header = b"TLBUNDLE\x01\x01" + struct.pack(">cQ", b"M", MAX_BUNDLE_MANIFEST + 1)
    with pytest.raises(BundleError, match="larger than"):
        BundleReader(io.BytesIO(header), KIND_EXPORT)


def test_oversize_item_length_is_refused_before_reading() -> None:
    items, data = export_items([8])
    blob = bytearray(make(KIND_EXPORT, items, data))
    e_at = blob.find(data[items[0].id]) - 9
    blob[e_at + 1 : e_at + 9] = struct.pack(">Q", 1 << 60)
    with pytest.raises(BundleError, match="larger than"):
        read_all(bytes(blob))


def test_item_size_must_match_the_manifest() -> None:
    items, data = export_items([8])
    blob = bytearray(make(KIND_EXPORT, items, data))
    e_at = blob.find(data[items[0].id]) - 9
    blob[e_at + 1 : e_at + 9] = struct.pack(">Q", 7)
    with pytest.raises(BundleError, match="not the size the manifest gives"):
        read_all(bytes(blob))


def _with_manifest(kind: int, doc: dict[str, object]) -> bytes:
    m = dump_json(doc)
    whole = nacl.hashlib.blake2b(digest_size=32)
    body = b"TLBUNDLE\x01" + bytes([kind]) + struct.pack(">cQ", b"M", len(m)) + m
    whole.update(body)
    return body + struct.pack(">cQ", b"Z", 32) + whole.digest()


GOOD = {
    "id": "00" * 16,
    "source_id": "11" * 16,
    "size": 5,
    "source_designation": "tidy otter",
    "received": "2026-11-24",
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": "AA" * 16}, "lowercase hex"),
        ({"id": "00" * 15}, "32 lowercase hex"),
        ({"size": 0}, "size must be"),
        ({"size": True}, "size must be"),
        ({"size": 1 << 42}, "size must be"),
        ({"received": "2026-13-01"}, "not a real date"),
        ({"source_designation": "a\x1b[31m"}, "control characters"),
        ({"source_designation": "x" * 65}, "1 to 64"),
        ({"extra": 1}, "unknown extra"),
    ],
)
def test_manifest_items_are_bounded_and_checked(change: dict[str, object], message: str) -> None:
    doc = {
        "type": "tipline-export-bundle",
        "v": 1,
        "created": "2026-11-24",
        "items": [{**GOOD, **change}],
    }
    with pytest.raises(BundleError, match=message):
        BundleReader(io.BytesIO(_with_manifest(KIND_EXPORT, doc)), KIND_EXPORT)


def test_duplicate_ids_and_wrong_document_type_are_refused() -> None:
    doc = {"type": "tipline-export-bundle", "v": 1, "created": "2026-11-24", "items": [GOOD, GOOD]}
    with pytest.raises(BundleError, match="repeats the id"):
        BundleReader(io.BytesIO(_with_manifest(KIND_EXPORT, doc)), KIND_EXPORT)
    doc = {"type": "tipline-reply-bundle", "v": 1, "created": "2026-11-24", "items": []}
    with pytest.raises(BundleError, match="version 1 tipline-export-bundle"):
        BundleReader(io.BytesIO(_with_manifest(KIND_EXPORT, doc)), KIND_EXPORT)


def test_an_empty_bundle_is_valid() -> None:
    blob = make(KIND_REPLY, [], {})
    reader = BundleReader(io.BytesIO(blob), KIND_REPLY)
    assert reader.items == []
    assert list(reader) == []


def test_writer_refuses_an_item_that_is_not_the_listed_size() -> None:
    items, _data = export_items([8])
    with pytest.raises(BundleError, match="not the size its listing gives"):
        write_bundle(io.BytesIO(), KIND_EXPORT, items, lambda i: io.BytesIO(b"short"))
    with pytest.raises(BundleError, match="not the size its listing gives"):
        write_bundle(io.BytesIO(), KIND_EXPORT, items, lambda i: io.BytesIO(b"x" * 9))


def test_writer_refuses_what_a_reader_would_refuse() -> None:
    bad = ExportItem("zz" * 16, "11" * 16, "tidy otter", "2026-11-24", 5)
    with pytest.raises(BundleError, match="hex"):
        encode_manifest(KIND_EXPORT, [bad])


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_single_byte_change_is_caught(data: st.DataObject) -> None:
    items, payload = export_items([40, 7])
    blob = bytearray(make(KIND_EXPORT, items, payload))
    at = data.draw(st.integers(0, len(blob) - 1))
    blob[at] ^= data.draw(st.integers(1, 255))
    try:
        got, ok = read_all(bytes(blob))
    except BundleError:
        return
    # The only change a reader may let through is one its per-item checksum reports.
    assert not all(ok.values())
    assert set(got) == set(payload)


def test_entry_digest_is_the_checked_blake2b_of_the_envelope() -> None:
    items, data = export_items([CHUNK + 5])
    for entry in BundleReader(io.BytesIO(make(KIND_EXPORT, items, data)), KIND_EXPORT):
        with pytest.raises(BundleError, match="once it is finished"):
            _ = entry.digest
        entry.read(10)
        assert entry.finish()
        expected = nacl.hashlib.blake2b(data[entry.item.id], digest_size=32).digest()
        assert entry.digest == expected
