"""The sweeper: remove what a crash (or a kill) left between a file and its row.

Every storage operation is ordered so that a kill at any point leaves the old state or the new
one, plus at most a file nobody can reach (docs/THREAT-MODEL.md, "A crash will lose a tip"):
- a blob with no row (killed between a blob and its row, or between a delete's commit and the
  file's removal): removed;
- a finished upload's file moved into the blob store with no submission row (killed between
  ``finish``'s move and its commit): given back to its upload, which can be finished again;
- a partial upload file with no row (killed between writing it and committing the row):
  removed; an upload row whose file is gone: removed.
Files younger than ``GRACE`` are left alone (a request may be between the two steps right now),
and so is any file a request holds locked. Run by ``tipline-server retention`` (daily) and
``tipline-server sweep``; it also publishes pending blobs (``BlobStore.publish``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from .blobs import BlobStore, Store, age_of, try_lock
from .models import Reply, Submission, TriageUpdate, Upload
from .uploads import expire_old, restore_interrupted

if TYPE_CHECKING:
    from .s3store import S3BlobStore

GRACE = 15 * 60  # seconds; far longer than a request takes between a file and its row
# triage: sealed triage updates (SPEC §8.5); a blob without its row (an import that died
# between the two, or one stored before rows existed) is an orphan like any other.
_ROWS: dict[str, type[Submission] | type[Reply] | type[TriageUpdate]] = {
    "submissions": Submission,
    "replies": Reply,
    "triage": TriageUpdate,
}


@dataclass(frozen=True)
class Swept:
    """What one run did."""

    published: int = 0
    restored: int = 0  # finished uploads given back to their upload
    blobs: int = 0  # blobs without a row, removed
    parts: int = 0  # partial upload files without a row, removed
    uploads: int = 0  # upload rows without a file, or idle past the time to live, removed

    def describe(self) -> str:
        """One line for the admin."""
        return (
            f"published {self.published} pending blobs, gave {self.restored} interrupted "
            f"uploads back, removed {self.blobs} orphan blobs, {self.parts} orphan upload "
            f"files and {self.uploads} upload rows without a file or idle too long"
        )


def _present(
    db: Session, model: type[Submission | Reply | Upload | TriageUpdate], ids: Sequence[str]
) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found.update(db.scalars(select(model.id).where(model.id.in_(chunk))).all())
    return found


def _old(paths: Iterable[tuple[str, Path]], grace: float, now: float) -> list[str]:
    out = []
    for name, path in paths:
        with contextlib.suppress(FileNotFoundError):
            if age_of(path, now) >= grace:
                out.append(name)
    return out


def run(
    db: Session,
    store: Store,
    grace: float = GRACE,
    now: float | None = None,
    upload_ttl_hours: int | None = None,
) -> Swept:
    """Sweep once (see the module's docstring); with ``upload_ttl_hours``, also drop uploads
    idle that long (``uploads.expire_old``, counted with the rows without a file).
    """
    moment = time.time() if now is None else now
    expired = 0 if upload_ttl_hours is None else expire_old(store, upload_ttl_hours, db)
    store.sweep(now=moment)
    published = store.publish()
    if not isinstance(store, BlobStore):
        return _run_s3(db, store, grace, moment, published, expired)
    restored = blobs = parts = 0
    for kind, model in _ROWS.items():
        ids = _old(store.ids(kind), grace, moment)
        have = _present(db, model, ids)
        uploading = _present(db, Upload, ids) if kind == "submissions" else set()
        for blob_id in ids:
            if blob_id in have:
                continue
            if blob_id in uploading:
                restored += restore_interrupted(store, blob_id)
                continue
            blobs += _remove_orphan_blob(db, store, kind, blob_id)
    parts_ids = _old(store.upload_ids(), grace, moment)
    have = _present(db, Upload, parts_ids)
    for upload_id in parts_ids:
        if upload_id not in have:
            parts += _remove_orphan_part(db, store, upload_id)
    rows = _uploads_without_files(db, store)
    return Swept(published, restored, blobs, parts, rows + expired)


def _run_s3(
    db: Session, store: S3BlobStore, grace: float, now: float, published: int, expired: int
) -> Swept:
    """The same on S3, by the objects' times: blobs with no row (an upload's row counts: a
    finish that completed its multipart upload and died before its commit left one, which the
    next finish commits) and uploads with no row (their header object and multipart upload),
    older than ``grace``, are removed. Nothing needs giving back."""
    blobs = parts = 0
    for kind, model in _ROWS.items():
        ids = [i for i, when in store.ids(kind) if now - when >= grace]
        have = _present(db, model, ids) | _present(db, Upload, ids)
        for blob_id in ids:
            if blob_id not in have:
                store.delete(kind, blob_id)
                blobs += 1
    old = [i for i, when in store.upload_ids() if now - when >= grace]
    have = _present(db, Upload, old)
    for upload_id in old:
        if upload_id not in have:
            store.upload_discard(upload_id)
            parts += 1
    gone = [
        i
        for i in db.scalars(select(Upload.id)).all()
        if store.upload_received(i) is None and not store.exists("submissions", i)
    ]
    for upload_id in gone:
        row = db.get(Upload, upload_id)
        if row is not None:
            db.delete(row)
    db.commit()
    return Swept(published, 0, blobs, parts, len(gone) + expired)


def _remove_orphan_blob(db: Session, store: BlobStore, kind: str, blob_id: str) -> int:
    model = _ROWS[kind]
    for place in (store.pending_path(kind, blob_id), store.published_path(kind, blob_id)):
        with try_lock(place) as handle:
            if handle is None:
                continue  # gone, or a request holds it
            db.rollback()
            if db.get(model, blob_id) is None and db.get(Upload, blob_id) is None:
                place.unlink()
                return 1
    return 0


def _remove_orphan_part(db: Session, store: BlobStore, upload_id: str) -> int:
    path = store.upload_path(upload_id)
    with try_lock(path) as handle:
        if handle is None:
            return 0
        db.rollback()
        if db.get(Upload, upload_id) is not None:
            return 0
        path.unlink()
        return 1


def _uploads_without_files(db: Session, store: BlobStore) -> int:
    """Upload rows whose partial file is gone (and was not moved into the store)."""

    def missing(upload_id: str) -> bool:
        return not store.upload_path(upload_id).exists() and not store.exists(
            "submissions", upload_id
        )

    # Looked at twice: a file given back between the two looks of one pass is seen by the other.
    gone = [i for i in db.scalars(select(Upload.id)).all() if missing(i) and missing(i)]
    for upload_id in gone:
        row = db.get(Upload, upload_id)
        if row is not None:
            db.delete(row)
    db.commit()
    return len(gone)
