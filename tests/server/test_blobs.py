"""The blob store: durable before acknowledged, nothing half-written under a real name."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import BinaryIO

import pytest

from tipline.server.blobs import STALE_TEMP_SECONDS, BlobStore, LowDiskSpaceError
from tipline.server.models import new_id


def test_write_read_delete(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, 0)
    blob_id = new_id()
    assert store.write("submissions", blob_id, lambda f: f.write(b"ciphertext")) == 10
    with store.open("submissions", blob_id) as f:
        assert f.read() == b"ciphertext"
    assert list(store.tmp.iterdir()) == []
    with pytest.raises(FileExistsError):
        store.write("submissions", blob_id, lambda f: f.write(b"again"))
    store.delete("submissions", blob_id)
    store.delete("submissions", blob_id)  # twice is fine
    assert not store.path("submissions", blob_id).exists()


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, 0)
    blob_id = new_id()

    def fail(f: BinaryIO) -> None:
        f.write(b"half")
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        store.write("submissions", blob_id, fail)
    assert not store.path("submissions", blob_id).exists()
    assert list(store.tmp.iterdir()) == []


@pytest.mark.parametrize("bad", ["../../etc/passwd", "ABC", "0" * 31, "0" * 32 + "/x"])
def test_ids_cannot_escape(tmp_path: Path, bad: str) -> None:
    store = BlobStore(tmp_path, 0)
    with pytest.raises(ValueError, match="not a"):
        store.path("submissions", bad)
    with pytest.raises(ValueError, match="not a"):
        store.upload_path(bad)
    with pytest.raises(ValueError, match="not a"):
        store.path("../x", new_id())


def test_free_space_threshold(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, 1 << 62)
    with pytest.raises(LowDiskSpaceError, match="short of disk space"):
        store.check_space(1)
    BlobStore(tmp_path, 0).check_space(1)


def test_leftovers_of_a_crash_are_swept(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, 0)
    leftover = store.tmp / ".blob-old"
    leftover.write_bytes(b"x")
    # A temp blob's mtime is set to the day just before its rename, so mtime cannot tell a
    # crashed one from one being written: age counts from the ctime, which nobody can set.
    os.utime(leftover, (0, 0))
    BlobStore(tmp_path, 0)  # a restart
    assert leftover.exists()
    store.sweep(now=time.time() + STALE_TEMP_SECONDS + 1)
    assert not leftover.exists()
