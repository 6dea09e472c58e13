"""The server's ephemeral spool (docs/SPEC.md §7)."""

from __future__ import annotations

import tempfile

import pytest

from tipline.crypto.errors import SpoolError
from tipline.crypto.spool import Spool


def read_all(spool: Spool, step: int = 10_000) -> bytes:
    reader, out = spool.reader(), bytearray()
    while piece := reader.read(step):
        out += piece
    return bytes(out)


@pytest.mark.parametrize("size", [0, 1, 65536, 65537, 300_000])
def test_round_trip_and_nothing_plain_on_disk(size: int) -> None:
    data = (b"the list of names " * (size // 18 + 1))[:size]
    with tempfile.TemporaryFile() as file:
        spool = Spool(file)
        for i in range(0, size, 7000):
            spool.write(data[i : i + 7000])
        spool.close_writing()
        file.seek(0)
        raw = file.read()
        assert b"list of names" not in raw
        assert spool.size == size
        assert read_all(spool) == data


def test_tampered_spool_is_refused() -> None:
    with tempfile.TemporaryFile() as file:
        spool = Spool(file)
        spool.write(b"x" * 1000)
        spool.close_writing()
        file.seek(5)
        file.write(b"\x00")
        with pytest.raises(SpoolError):
            read_all(spool)
