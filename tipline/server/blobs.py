"""The blob store: ciphertext on the filesystem, made durable before anyone is told it worked.

A blob is written under a temporary name, fsynced, renamed into place and its folder fsynced;
only then does the caller commit the row and answer the source. A crash at any point leaves
either nothing or a complete blob, never half of one under a real name (what a crash leaves
outside the database's view, the sweeper removes: ``sweeper.py``).

**No precise time on disk** (docs/THREAT-MODEL.md). A file's mtime and atime are set to the
day (UTC midnight) before it gets its name, like the rows, which keep only the date. Its ctime
cannot be set from user space, so a new blob first lands in ``pending/<kind>/``, and
``publish`` moves into ``<kind>/`` only the blobs that arrived before the current hour began:
a published blob's ctime is the moment of some publication run, which says no more than
"before that hour". Readers look in both places, so journalists and sources get a blob at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeAlias

from ..crypto.errors import TiplineError

KINDS = ("submissions", "replies", "triage")  # triage: sealed desk-to-desk updates (SPEC §8.5)
STALE_TEMP_SECONDS = 6 * 3600  # far longer than any single request may take
_ID = re.compile(r"\A[0-9a-f]{32}\Z")


class LowDiskSpaceError(TiplineError):
    """the tip line is short of disk space right now; nothing you already sent was lost.
    Please try again later"""


class StoreUnavailableError(TiplineError):
    """the tip line's storage does not answer right now; nothing you already sent was lost.
    Please try again later"""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def day_start(now: float | None = None) -> float:
    """UTC midnight of the day ``now`` (a Unix time) falls in: the time files are given."""
    moment = time.time() if now is None else now
    return float(int(moment) - int(moment) % 86400)


def hour_start(now: float | None = None) -> float:
    """The start of the UTC hour ``now`` falls in."""
    moment = time.time() if now is None else now
    return float(int(moment) - int(moment) % 3600)


def blur(path: Path | int, to: float | None = None) -> None:
    """Set a file's (or an open descriptor's) atime and mtime to ``to`` (the day by default)."""
    when = day_start() if to is None else to
    os.utime(path, (when, when))


class BlobStore:
    """Envelopes under ``root``: one folder per kind and a pending one for each (see above), an
    upload folder and a temp folder, all on one filesystem (renames are atomic).
    """

    def __init__(self, root: Path, min_free: int) -> None:
        self.root, self.min_free = root, min_free
        self.tmp = root / "tmp"
        self.uploads = root / "uploads"
        self.pending = root / "pending"
        for folder in (
            self.tmp,
            self.uploads,
            *(root / kind for kind in KINDS),
            self.pending,  # made here, not as a parent below (a parent ignores ``mode``)
            *(self.pending / kind for kind in KINDS),
        ):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            blur(folder)
        blur(self.pending)
        blur(root)
        self._published_hour = 0.0
        self._publishing = threading.Lock()
        self._publisher_pid = 0
        self.sweep()

    def sweep(self, age: float = STALE_TEMP_SECONDS, now: float | None = None) -> None:
        """Remove temporary blobs a crash left behind (ciphertext, but no longer anyone's).
        Only old ones: another worker may be writing a young one right now. Age is counted
        from the later of mtime and ctime (mtime is set to the day just before the rename).
        """
        cutoff = (time.time() if now is None else now) - age
        for leftover in self.tmp.glob(".blob-*"):
            with contextlib.suppress(FileNotFoundError):
                st = leftover.stat()
                if max(st.st_mtime, st.st_ctime) < cutoff:
                    leftover.unlink()

    def _check(self, kind: str, blob_id: str) -> None:
        if kind not in KINDS or not _ID.match(blob_id):
            raise ValueError("not a blob id")

    def published_path(self, kind: str, blob_id: str) -> Path:
        """Where a blob lives once published."""
        self._check(kind, blob_id)
        return self.root / kind / blob_id

    def pending_path(self, kind: str, blob_id: str) -> Path:
        """Where a blob waits for the next publication."""
        self._check(kind, blob_id)
        return self.pending / kind / blob_id

    def path(self, kind: str, blob_id: str) -> Path:
        """Where a blob is now (pending or published; the published place if it is nowhere).
        Ids are checked so a name can never climb out of the folder.
        """
        pending = self.pending_path(kind, blob_id)
        return pending if pending.exists() else self.published_path(kind, blob_id)

    def exists(self, kind: str, blob_id: str) -> bool:
        """Whether the blob is stored, pending or published."""
        return (
            self.pending_path(kind, blob_id).exists() or self.published_path(kind, blob_id).exists()
        )

    def check_space(self, incoming: int) -> None:
        """Refuse (``LowDiskSpaceError``) if ``incoming`` more bytes would leave too little free."""
        if shutil.disk_usage(self.root).free - incoming < self.min_free:
            raise LowDiskSpaceError()

    def write(self, kind: str, blob_id: str, fill: Callable[[BinaryIO], object]) -> int:
        """Create a blob from what ``fill`` writes; returns its size once it is durable."""
        target = self.pending_path(kind, blob_id)
        self.publish_hourly()
        fd, temp = tempfile.mkstemp(dir=self.tmp, prefix=".blob-")
        try:
            with os.fdopen(fd, "wb") as out:
                fill(out)
                out.flush()
                os.fsync(out.fileno())
                size = out.tell()
            self._arrive(Path(temp), kind, blob_id, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        return size

    def adopt(self, kind: str, blob_id: str, finished: Path) -> None:
        """Move a finished upload (already fsynced) into the pending folder."""
        self.publish_hourly()
        self._arrive(finished, kind, blob_id, self.pending_path(kind, blob_id))
        _fsync_dir(finished.parent)
        self.blur_folders()

    def give_back(self, kind: str, blob_id: str, to: Path) -> bool:
        """Undo ``adopt``: the blob goes back to ``to`` (its upload's partial file). False if
        it is no longer pending (published blobs are never given back).
        """
        try:
            os.rename(self.pending_path(kind, blob_id), to)
        except FileNotFoundError:
            return False
        _fsync_dir(to.parent)
        _fsync_dir(self.pending / kind)
        self.blur_folders()
        return True

    def _arrive(self, temp: Path, kind: str, blob_id: str, target: Path) -> None:
        if self.exists(kind, blob_id):
            raise FileExistsError(blob_id)
        blur(temp)
        os.rename(temp, target)
        _fsync_dir(target.parent)
        self.blur_folders()

    def blur_folders(self) -> None:
        """Set the folders' mtimes back to the day after a change in them (their ctimes
        cannot be set: docs/THREAT-MODEL.md says what that leaves)."""
        for folder in (self.tmp, self.uploads, *(self.pending / k for k in KINDS)):
            with contextlib.suppress(FileNotFoundError):
                blur(folder)

    def publish(self, now: float | None = None) -> int:
        """Move every pending blob that arrived before the current hour into place; returns
        how many. Blobs of this hour wait for the next run, so a blob's ctime (set by the
        rename) never falls in the hour it arrived in.
        """
        cutoff = hour_start(now)
        moved = 0
        for kind in KINDS:
            folder = self.pending / kind
            with os.scandir(folder) as listing:
                entries = list(listing)
            for entry in entries:
                if not _ID.match(entry.name):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat().st_ctime >= cutoff:
                        continue
                    target = self.published_path(kind, entry.name)
                    if target.exists():  # cannot happen (ids are random); never overwrite
                        continue
                    os.rename(entry.path, target)
                    moved += 1
            if moved:
                _fsync_dir(self.root / kind)
                _fsync_dir(folder)
                blur(self.root / kind)
        if moved:
            self.blur_folders()
        return moved

    def publish_hourly(self) -> None:
        """Publish once per hour per process, on the first write of the hour (cheap otherwise).
        A quiet tip line relies on ``tipline-server publish`` or the worker's timer instead.
        """
        hour = hour_start()
        if self._published_hour >= hour or not self._publishing.acquire(blocking=False):
            return
        try:
            self.publish()
            self._published_hour = hour
        finally:
            self._publishing.release()

    def start_hourly_publisher(self) -> None:
        """Publish a few seconds after every hour begins, from a thread of this process
        (started once per process, on its first request), so a quiet tip line's blobs do not
        wait in ``pending/`` for the next write or the daily sweep.
        """
        if self._publisher_pid == os.getpid():
            return
        self._publisher_pid = os.getpid()
        threading.Thread(target=self._publish_every_hour, name="publisher", daemon=True).start()

    def _publish_every_hour(self) -> None:
        while self.root.is_dir():
            time.sleep(hour_start() + 3600 + 5 - time.time())
            try:
                self.publish()
            except OSError:
                return  # the store is gone (a test's folder) or broken: requests will say so

    def open(self, kind: str, blob_id: str) -> BinaryIO:
        """Open a blob for reading, wherever it is (a publication may move it meanwhile)."""
        places = (
            self.published_path(kind, blob_id),
            self.pending_path(kind, blob_id),
            self.published_path(kind, blob_id),
        )
        for place in places:
            with contextlib.suppress(FileNotFoundError):
                return _read_noatime(place)
        raise FileNotFoundError(f"no {kind[:-1]} with that id")

    def delete(self, kind: str, blob_id: str) -> None:
        """Remove a blob (missing is fine: deleting twice is not an error)."""
        for place in (self.pending_path(kind, blob_id), self.published_path(kind, blob_id)):
            with contextlib.suppress(FileNotFoundError):
                place.unlink()
        _fsync_dir(self.root / kind)
        _fsync_dir(self.pending / kind)
        blur(self.root / kind)
        self.blur_folders()

    def ids(self, kind: str) -> Iterator[tuple[str, Path]]:
        """Every stored blob of a kind: its id and where it is."""
        for folder in (self.pending / kind, self.root / kind):
            with os.scandir(folder) as entries:
                found = [(e.name, Path(e.path)) for e in entries if _ID.match(e.name)]
            yield from found

    def upload_path(self, upload_id: str) -> Path:
        """The partial file of a resumable upload."""
        if not _ID.match(upload_id):
            raise ValueError("not an upload id")
        return self.uploads / f"{upload_id}.part"

    def upload_ids(self) -> Iterator[tuple[str, Path]]:
        """Every partial file: its upload id and path."""
        with os.scandir(self.uploads) as entries:
            found = [(e.name[:-5], Path(e.path)) for e in entries if e.name.endswith(".part")]
        yield from ((i, p) for i, p in found if _ID.match(i))


def _read_noatime(path: Path) -> BinaryIO:
    """Open for reading without updating the atime (an export must not record when), where
    the file system allows it (O_NOATIME needs the file's owner: the app, here)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOATIME", 0))
    except PermissionError:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    return os.fdopen(fd, "rb")


@contextlib.contextmanager
def try_lock(path: Path) -> Iterator[BinaryIO | None]:
    """The file, exclusively locked, or None if someone holds the lock (or it is gone)."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        yield None
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        yield handle


def age_of(path: Path, now: float | None = None) -> float:
    """Seconds since a file last changed (its ctime: the one time nobody can set)."""
    return (time.time() if now is None else now) - path.stat().st_ctime


if TYPE_CHECKING:
    from .s3store import S3BlobStore

# Either blob store: the rest of the server uses what both have (write, open, delete, exists,
# ids, publish, check_space, tmp); uploads.py and sweeper.py tell them apart where they differ.
Store: TypeAlias = "BlobStore | S3BlobStore"
