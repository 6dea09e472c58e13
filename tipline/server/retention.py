"""Retention: delete ciphertext the admin's settings say has been kept long enough.

Two clocks (docs/ADMIN.md): days after a journalist downloaded a submission, and an absolute
maximum age for every submission and reply. Rows go first (committed), then blobs, so a crash
in between leaves only an orphan blob, never a row pointing at nothing.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from . import audit, settings
from .blobs import BlobStore
from .models import Reply, Submission, today
from .transfer import delete_submissions

BATCH = 500


@dataclass(frozen=True)
class Swept:
    """How much one run deleted."""

    submissions: int
    replies: int


def run(db: Session, store: BlobStore, on: datetime.date | None = None) -> Swept:
    """Delete what has expired as of ``on`` (today, UTC, by default)."""
    value = settings.load(db)
    day = on or today()
    conditions = []
    if value.retention_days_after_download:
        cutoff = day - datetime.timedelta(days=value.retention_days_after_download)
        conditions.append(Submission.downloaded_on < cutoff)
    if value.retention_max_days:
        conditions.append(
            Submission.received < day - datetime.timedelta(days=value.retention_max_days)
        )
    subs = replies = 0
    if conditions:
        while True:
            ids = db.scalars(select(Submission.id).where(or_(*conditions)).limit(BATCH)).all()
            if not ids:
                break
            subs += delete_submissions(db, store, list(ids))
    if value.retention_max_days:
        cutoff = day - datetime.timedelta(days=value.retention_max_days)
        while True:
            rows = db.scalars(select(Reply).where(Reply.created < cutoff).limit(BATCH)).all()
            if not rows:
                break
            for row in rows:
                db.delete(row)
            db.commit()
            for row in rows:
                store.delete("replies", row.id)
            replies += len(rows)
    if subs or replies:
        audit.record(db, "retention", "retention", f"{subs} submissions, {replies} replies")
    return Swept(subs, replies)
