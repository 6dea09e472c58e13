"""Retention: delete ciphertext the admin's settings say has been kept long enough.

Two clocks (docs/ADMIN.md): days after a journalist downloaded a submission, and an absolute
maximum age for every submission and reply. Rows go first (committed), then blobs, so a crash
in between leaves only an orphan blob, never a row pointing at nothing.

Every run also sweeps sources that never stored a submission (left by pages of the old
register-then-upload path whose upload failed) once they are more than a day old. A source
whose submissions were deleted is never swept: it may still get a reply.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.orm import Session

from . import audit, settings
from .blobs import Store
from .db import forget
from .models import Reply, Source, Submission, Upload, today
from .transfer import delete_submissions, expire_triage

BATCH = 500


@dataclass(frozen=True)
class Swept:
    """How much one run deleted."""

    submissions: int
    replies: int
    sources: int = 0
    triage: int = 0


def run(
    db: Session, store: Store, on: datetime.date | None = None, triage_max_days: int = 0
) -> Swept:
    """Delete what has expired as of ``on`` (today, UTC, by default); triage updates stored
    more than ``triage_max_days`` days ago too (``TRIAGE_MAX_DAYS``; 0 keeps them)."""
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
    triage = 0
    if triage_max_days:
        triage = expire_triage(db, store, day - datetime.timedelta(days=triage_max_days))
    empty = sweep_empty_sources(db, day)
    # Every run is recorded, also when it removed nothing: the health check reads when
    # retention last ran from here (health.py).
    audit.record(
        db,
        "retention",
        "retention",
        f"{subs} submissions, {replies} replies, {empty} sources that never sent anything, "
        f"{triage} triage updates",
    )
    return Swept(subs, replies, empty, triage)


def sweep_empty_sources(db: Session, day: datetime.date) -> int:
    """Delete sources that never stored a submission, have nothing stored for them and no
    upload under way, and were made before yesterday; return how many went.
    """
    query = select(Source.id).where(
        ~Source.submitted,
        Source.created < day - datetime.timedelta(days=1),
        ~exists().where(Submission.source_id == Source.id),
        ~exists().where(Reply.source_id == Source.id),
        ~exists().where(Upload.source_id == Source.id),
    )
    ids = list(db.scalars(query).all())
    for start in range(0, len(ids), BATCH):
        db.execute(delete(Source).where(Source.id.in_(ids[start : start + BATCH])))
    db.commit()
    if ids:
        forget(db)
    return len(ids)
