"""The server's ephemeral spool (docs/SPEC.md §7)."""

from __future__ import annotations

import tempfile

import pytest

from tipline.crypto.errors import SpoolError
from tipline.crypto.format import ABYTES, CHUNK_SIZE
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


def test_full_chunks_reach_the_file_at_once() -> None:
    # Plaintext is held only until a chunk is full: exactly one chunk goes out as soon as it is.
    with tempfile.TemporaryFile() as file:
        spool = Spool(file)
        spool.write(b"a" * (CHUNK_SIZE - 1))
        assert file.tell() == 0
        spool.write(b"a")
        assert file.tell() == CHUNK_SIZE + ABYTES
        spool.write(b"b" * (2 * CHUNK_SIZE))
        assert file.tell() == 3 * (CHUNK_SIZE + ABYTES)
        spool.close_writing()
        assert file.tell() == 3 * (CHUNK_SIZE + ABYTES) + ABYTES  # the empty FINAL chunk
        assert read_all(spool) == b"a" * CHUNK_SIZE + b"b" * (2 * CHUNK_SIZE)


def test_spool_messages_and_small_reads() -> None:
    with tempfile.TemporaryFile() as file:
        spool = Spool(file)
        assert spool.write(b"hello") == 5
        spool.close_writing()
        spool.close_writing()  # twice is harmless
        with pytest.raises(ValueError, match=r"^the spool is closed for writing$"):
            spool.write(b"more")
        reader = spool.reader()
        assert reader.read(0) == b""
        with pytest.raises(ValueError, match=r"^read the spool in bounded pieces$"):
            reader.read(-1)
        assert reader.read(2) == b"he"
        assert reader.read(0) == b""
        assert reader.read(100) == b"llo"
        assert reader.read(1) == b""
        assert reader.read(1) == b""


def test_the_first_chunk_is_bound_to_the_spool() -> None:
    # A ciphertext cut to start at its second chunk does not read as a shorter spool.
    with tempfile.TemporaryFile() as file:
        spool = Spool(file)
        spool.write(b"x" * (2 * CHUNK_SIZE))
        reader = spool.reader()
        file.seek(CHUNK_SIZE + ABYTES)
        with pytest.raises(SpoolError) as info:
            reader.read(10)
        assert str(info.value) == "a temporary upload file could not be read back"
