"""Importing envelopes large enough to go through the read-ahead thread: same results as ever."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tipline.crypto import envelope
from tipline.crypto.pipeline import ReadAhead
from tipline.desk import importer
from tipline.desk.importer import DAMAGED, import_bundle
from tipline.desk.maintenance import verify
from tipline.desk.vault import Vault

from .conftest import PASS, Sub, bundle_bytes, make_source, public_keys, submission

SPARE_CORE = importer.spare_core  # the real one (the fixture below replaces it)


@pytest.fixture(autouse=True)
def threaded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """One chunk per block, so a 300 KB envelope takes the threaded path, with a read-ahead
    thread however busy the machine is; count the read-ahead threads."""
    monkeypatch.setattr(envelope, "BLOCK_CHUNKS", 1)
    monkeypatch.setattr(importer, "spare_core", lambda: True)
    started: list[object] = []

    class Counted(ReadAhead):
        def __enter__(self) -> Counted:
            started.append(self)
            return super().__enter__()

    monkeypatch.setattr(envelope, "ReadAhead", Counted)
    yield started
    assert [t.name for t in threading.enumerate() if t.name.startswith("tipline-")] == []


def big_subs(vault_dir: Path, count: int) -> list[Sub]:
    pks = public_keys(vault_dir)
    source = make_source()
    return [
        submission(pks, source, f"item {n}", [("f.bin", os.urandom(300_000))]) for n in range(count)
    ]


def no_temporaries(vault_dir: Path) -> bool:
    return not [p for p in (vault_dir / "items").iterdir() if p.name.startswith(".tmp")]


def test_large_items_are_stored_byte_for_byte(vault_dir: Path, threaded: list[object]) -> None:
    subs = big_subs(vault_dir, 3)
    with Vault.open(vault_dir, PASS) as vault:
        report = import_bundle(vault, io.BytesIO(bundle_bytes(subs)))
        assert report.ok and sorted(report.added) == sorted(s.item.id for s in subs)
        for sub in subs:
            assert vault.item_file(sub.item.id).read_bytes() == sub.data
        assert verify(vault, deep=True).problems == []
    assert len(threaded) == 3  # one read-ahead per import (verify --deep reads in place)


def test_damage_late_in_a_large_item_is_reported(vault_dir: Path) -> None:
    subs = big_subs(vault_dir, 3)
    data = bytearray(bundle_bytes(subs))
    data[data.index(subs[1].data[-300:]) + 100] ^= 1  # in its last chunks
    with Vault.open(vault_dir, PASS) as vault:
        report = import_bundle(vault, io.BytesIO(bytes(data)))
    assert report.failed == [(subs[1].item.id, DAMAGED)]
    assert sorted(report.added) == sorted([subs[0].item.id, subs[2].item.id])
    assert no_temporaries(vault_dir)


def test_a_bundle_truncated_inside_a_large_item(vault_dir: Path) -> None:
    subs = big_subs(vault_dir, 3)
    data = bundle_bytes(subs)
    cut = data.index(subs[2].data[:64]) + 200_000
    with Vault.open(vault_dir, PASS) as vault:
        report = import_bundle(vault, io.BytesIO(data[:cut]))
    assert sorted(report.added) == sorted(s.item.id for s in subs[:2])
    assert report.bundle_error == "this bundle cannot be read: the bundle is truncated"
    assert no_temporaries(vault_dir)
    with Vault.open(vault_dir, PASS) as vault:
        again = import_bundle(vault, io.BytesIO(data))
    assert again.added == [subs[2].item.id] and again.duplicates == 2


def test_a_large_item_with_trailing_bytes_is_refused(vault_dir: Path) -> None:
    pks = public_keys(vault_dir)
    sub = submission(pks, make_source(), "x", [("f.bin", os.urandom(300_000))])
    sub = Sub(
        type(sub.item)(
            sub.item.id,
            sub.item.source_id,
            sub.item.source_designation,
            sub.item.received,
            sub.item.size + 5,
        ),
        sub.data + b"extra",
    )
    with Vault.open(vault_dir, PASS) as vault:
        report = import_bundle(vault, io.BytesIO(bundle_bytes([sub])))
        assert vault.store.all_ids() == []
    assert report.failed and "could not be opened" in report.failed[0][1]
    assert no_temporaries(vault_dir)


def test_a_one_core_machine_reads_in_place(
    vault_dir: Path, threaded: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "spare_core", lambda: False)
    subs = big_subs(vault_dir, 2)
    with Vault.open(vault_dir, PASS) as vault:
        report = import_bundle(vault, io.BytesIO(bundle_bytes(subs)))
        assert report.ok and len(report.added) == 2
        for sub in subs:
            assert vault.item_file(sub.item.id).read_bytes() == sub.data
    assert threaded == []


def test_spare_core_counts_the_cores_not_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (50.0, 50.0, 50.0))  # a very busy machine
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})
    assert SPARE_CORE() is True  # threads still: each gets its share of the cores
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0})
    assert SPARE_CORE() is False  # control: one core, nothing to share
