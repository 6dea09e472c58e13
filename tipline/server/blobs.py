"""The blob store: ciphertext on the filesystem, made durable before anyone is told it worked.

A blob is written under a temporary name, fsynced, renamed into place and its folder fsynced;
only then does the caller commit the row and answer the source. A crash at any point leaves
either nothing or a complete blob, never half of one under a real name.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ..crypto.errors import TiplineError

KINDS = ("submissions", "replies")
STALE_TEMP_SECONDS = 6 * 3600  # far longer than any single request may take
_ID = re.compile(r"\A[0-9a-f]{32}\Z")


class LowDiskSpaceError(TiplineError):
    """the tip line is short of disk space right now; nothing you already sent was lost.
    Please try again later"""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobStore:
    """Envelopes under ``root``: one folder per kind, a temp folder on the same filesystem."""

    def __init__(self, root: Path, min_free: int) -> None:
        self.root, self.min_free = root, min_free
        self.tmp = root / "tmp"
        self.uploads = root / "uploads"
        for folder in (self.tmp, self.uploads, *(root / kind for kind in KINDS)):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.sweep()

    def sweep(self, age: float = STALE_TEMP_SECONDS) -> None:
        """Remove temporary blobs a crash left behind (ciphertext, but no longer anyone's).
        Only old ones: another worker may be writing a young one right now.
        """
        cutoff = time.time() - age
        for leftover in self.tmp.glob(".blob-*"):
            with contextlib.suppress(FileNotFoundError):
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()

    def path(self, kind: str, blob_id: str) -> Path:
        """Where a blob lives; ids are checked so a name can never climb out of the folder."""
        if kind not in KINDS or not _ID.match(blob_id):
            raise ValueError("not a blob id")
        return self.root / kind / blob_id

    def check_space(self, incoming: int) -> None:
        """Refuse (``LowDiskSpaceError``) if ``incoming`` more bytes would leave too little free."""
        if shutil.disk_usage(self.root).free - incoming < self.min_free:
            raise LowDiskSpaceError()

    def write(self, kind: str, blob_id: str, fill: Callable[[BinaryIO], object]) -> int:
        """Create a blob from what ``fill`` writes; returns its size once it is durable."""
        target = self.path(kind, blob_id)
        fd, temp = tempfile.mkstemp(dir=self.tmp, prefix=".blob-")
        try:
            with os.fdopen(fd, "wb") as out:
                fill(out)
                out.flush()
                os.fsync(out.fileno())
                size = out.tell()
            self._publish(Path(temp), target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        return size

    def adopt(self, kind: str, blob_id: str, finished: Path) -> None:
        """Move a finished upload (already fsynced) into place."""
        self._publish(finished, self.path(kind, blob_id))

    def _publish(self, temp: Path, target: Path) -> None:
        if target.exists():
            raise FileExistsError(target.name)
        os.rename(temp, target)
        _fsync_dir(target.parent)

    def open(self, kind: str, blob_id: str) -> BinaryIO:
        """Open a blob for reading."""
        return self.path(kind, blob_id).open("rb")

    def delete(self, kind: str, blob_id: str) -> None:
        """Remove a blob (missing is fine: deleting twice is not an error)."""
        with contextlib.suppress(FileNotFoundError):
            self.path(kind, blob_id).unlink()
        _fsync_dir(self.root / kind)

    def upload_path(self, upload_id: str) -> Path:
        """The partial file of a resumable upload."""
        if not _ID.match(upload_id):
            raise ValueError("not an upload id")
        return self.uploads / f"{upload_id}.part"
