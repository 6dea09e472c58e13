"""The audit log of admin and journalist actions: who did what, and when.

An entry names the staff account and the action, and at most counts and key ids: never a
source's id, designation, or anything a source sent.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from .accounts import now
from .models import AuditEntry

MAX_DETAIL = 500
PAGE = 200


def record(db: Session, actor: str, action: str, detail: str = "") -> None:
    """Add an entry (committed with the caller's next commit, or now if nothing is pending)."""
    db.add(
        AuditEntry(
            at=now().replace(microsecond=0),
            actor=actor[:64],
            action=action[:64],
            detail=detail[:MAX_DETAIL],
        )
    )
    db.commit()


def recent(db: Session, limit: int = PAGE) -> list[AuditEntry]:
    """The newest entries first."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    return list(db.scalars(query).all())
