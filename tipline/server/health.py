"""The tip line's health: what an admin must know before it goes wrong (docs/ADMIN.md "Health").

One function, ``report``, gives every check; the admin page shows it and ``tipline-server
health`` prints it (``--json`` for a monitoring system, exit status 0 ok, 1 warning, 2 failure).
Every figure is a count, a size or a day: nothing here says anything about a source.
"""

from __future__ import annotations

import datetime
import enum
import shutil
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exists, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from . import keyset, manifests
from .blobs import BlobStore, Store, StoreUnavailableError
from .i18n import _, ngettext
from .models import AuditEntry, Reply, Source, Submission, Upload
from .uploads import idle_uploads

RETENTION_LATE = datetime.timedelta(hours=36)  # the timer runs daily; a day and a half is late
GIB = 1 << 30


class Status(enum.IntEnum):
    """A check's outcome; the command's exit status is the worst one."""

    OK = 0
    WARN = 1
    FAIL = 2


@dataclass(frozen=True)
class Check:
    """One line of the report: a name, an outcome, a sentence, and the figures behind it."""

    name: str
    status: Status
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The check for ``--json``."""
        return {
            "name": self.name,
            "status": self.status.name.lower(),
            "summary": self.summary,
            **self.figures,
        }


@dataclass(frozen=True)
class Report:
    """Every check, in a fixed order."""

    checks: tuple[Check, ...]

    @property
    def status(self) -> Status:
        """The worst outcome."""
        return max((c.status for c in self.checks), default=Status.OK)

    def as_json(self) -> dict[str, Any]:
        """The report for ``--json``."""
        return {
            "status": self.status.name.lower(),
            "checks": [c.as_json() for c in self.checks],
        }


def _size(n: int) -> str:
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n >> 20} MiB"


def check_database(db: Session) -> Check:
    """The database answers a query."""
    try:
        db.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        db.rollback()
        return Check(
            "database",
            Status.FAIL,
            _("the database does not answer (%(error)s)", error=type(exc).__name__),
        )
    return Check("database", Status.OK, _("the database answers"))


def check_disk(store: Store) -> Check:
    """Free space where blobs are written, against the floor below which tips are refused."""
    try:
        free = shutil.disk_usage(store.root).free
        writable = store.root.is_dir()
    except OSError as exc:
        return Check(
            "disk", Status.FAIL, _("the blob folder cannot be read (%(error)s)", error=exc.strerror)
        )
    figures = {"free_bytes": free, "floor_bytes": store.min_free}
    if not writable:
        return Check("disk", Status.FAIL, _("the blob folder is missing"), figures)
    if free < store.min_free:
        return Check(
            "disk",
            Status.FAIL,
            _(
                "%(free)s free, below the floor of %(floor)s: new tips are refused",
                free=_size(free),
                floor=_size(store.min_free),
            ),
            figures,
        )
    if free < 2 * store.min_free:
        return Check(
            "disk",
            Status.WARN,
            _(
                "%(free)s free, less than twice the floor of %(floor)s",
                free=_size(free),
                floor=_size(store.min_free),
            ),
            figures,
        )
    said = _("%(free)s free (floor %(floor)s)", free=_size(free), floor=_size(store.min_free))
    return Check("disk", Status.OK, said, figures)


def check_manifest(db: Session, org_public_key: bytes, today: datetime.date) -> Check:
    """The key manifest in force and its expiry; why none is, when none is."""
    life = keyset.lifetime(db, org_public_key, today)
    if life.current is None:
        return Check(
            "manifest",
            Status.FAIL,
            _(
                "no key manifest is in force (%(reason)s): the tip line takes no submissions",
                reason=life.reason,
            ),
        )
    manifest = life.current.manifest
    figures = {
        "version": manifest.version,
        "expires": manifest.expires.isoformat(),
        "days_left": life.days_left,
        "keys": len(manifest.recipients),
    }
    said = ngettext(
        "version %(version)s, %(num)d key, expires %(date)s",
        "version %(version)s, %(num)d keys, expires %(date)s",
        len(manifest.recipients),
        version=manifest.version,
        date=manifest.expires.isoformat(),
    )
    if life.warn:
        return Check(
            "manifest",
            Status.WARN,
            ngettext(
                "%(said)s: %(num)d day left; renew it on the signing desk "
                "(tipline-desk manifest renew)",
                "%(said)s: %(num)d days left; renew it on the signing desk "
                "(tipline-desk manifest renew)",
                life.days_left or 0,
                said=said,
            ),
            figures,
        )
    return Check("manifest", Status.OK, said, figures)


def check_retention(db: Session, now: datetime.datetime) -> Check:
    """When retention last ran (every run is in the audit log) and what it removed."""
    last = db.execute(
        select(AuditEntry.at, AuditEntry.detail)
        .where(AuditEntry.action == "retention")
        .order_by(AuditEntry.id.desc())
        .limit(1)
    ).first()
    if last is None:
        return Check(
            "retention",
            Status.WARN,
            _("retention has never run (is tipline-retention.timer enabled?)"),
        )
    figures = {"last_run": last.at.isoformat(sep=" "), "removed": last.detail}
    said = _(
        "last ran %(when)s UTC and removed %(removed)s",
        when=f"{last.at:%Y-%m-%d %H:%M}",
        removed=last.detail,
    )
    if now - last.at > RETENTION_LATE:
        return Check(
            "retention", Status.WARN, _("%(said)s; it should run daily", said=said), figures
        )
    return Check("retention", Status.OK, said, figures)


def check_uploads(db: Session, store: Store, ttl_hours: int, hour: datetime.datetime) -> Check:
    """Resumable uploads under way, and abandoned ones (idle past the time to live, by the
    rule that removes them: ``uploads.idle_uploads``) that retention should have removed."""
    pending = db.scalar(select(func.count()).select_from(Upload)) or 0
    abandoned = len(idle_uploads(db, store, ttl_hours + 1, hour))
    figures = {"pending": pending, "abandoned": abandoned}
    if abandoned:
        return Check(
            "uploads",
            Status.WARN,
            ngettext(
                "%(pending)d unfinished uploads, %(num)d idle for more than %(hours)d hours "
                "(removed by the next retention run)",
                "%(pending)d unfinished uploads, %(num)d idle for more than %(hours)d hours "
                "(removed by the next retention run)",
                abandoned,
                pending=pending,
                hours=ttl_hours,
            ),
            figures,
        )
    said = ngettext("%(num)d unfinished upload", "%(num)d unfinished uploads", pending)
    return Check("uploads", Status.OK, said, figures)


def empty_sources(db: Session) -> int:
    """Sources that never stored a submission and have nothing stored for them."""
    query = select(func.count()).where(
        ~Source.submitted,
        ~exists().where(Submission.source_id == Source.id),
        ~exists().where(Reply.source_id == Source.id),
        ~exists().where(Upload.source_id == Source.id),
    )
    return db.scalar(query) or 0


def check_sources(db: Session) -> Check:
    """Sources with no submissions (the admin page offers to remove them at once)."""
    count = empty_sources(db)
    figures = {"without_submissions": count}
    if count:
        return Check(
            "sources",
            Status.WARN,
            ngettext(
                "%(num)d source never sent anything (retention removes it after a day)",
                "%(num)d sources never sent anything (retention removes them after a day)",
                count,
            ),
            figures,
        )
    return Check("sources", Status.OK, _("no source without a submission"), figures)


def check_sealing(db: Session, store: Store, org_public_key: bytes) -> Check:
    """Submissions whose every recipient key has left the manifest: no desk key in use opens
    them, so they wait for a desk that still holds a retired key (listed at /admin/keys/stale
    and by ``tipline-server sealed-to-retired``). Reads only envelope headers."""
    if keyset.current(db, org_public_key) is None:
        return Check("sealing", Status.WARN, _("no manifest in force to compare with"))
    found, more = manifests.sealed_only_to_retired(db, store, org_public_key)
    figures = {"sealed_only_to_retired": len(found), "more": more}
    if found:
        said = (
            _(
                "%(num)d or more submissions are sealed only to retired keys: keep the desk "
                "that holds those keys until they are read (list: /admin/keys/stale)",
                num=len(found),
            )
            if more
            else ngettext(
                "%(num)d submission is sealed only to retired keys: keep the desk that holds "
                "those keys until they are read (list: /admin/keys/stale)",
                "%(num)d submissions are sealed only to retired keys: keep the desk that holds "
                "those keys until they are read (list: /admin/keys/stale)",
                len(found),
            )
        )
        return Check(
            "sealing",
            Status.WARN,
            said,
            figures,
        )
    return Check("sealing", Status.OK, _("every submission is sealed to a key in force"), figures)


def check_store(store: Store) -> Check | None:
    """On S3, whether the bucket answers (None for the local folder: the disk check's)."""
    if isinstance(store, BlobStore):
        return None
    try:
        store.reachable()
    except StoreUnavailableError:
        return Check(
            "store",
            Status.FAIL,
            _("the blob store does not answer: sources are told to try again later"),
        )
    return Check("store", Status.OK, _("the blob store answers"))


def report(
    db: Session,
    store: Store,
    org_public_key: bytes,
    ttl_hours: int,
    now: datetime.datetime | None = None,
) -> Report:
    """Every check, as of ``now`` (UTC, naive; the current time by default)."""
    now = now or datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    database = check_database(db)
    checks = [database, check_disk(store)]
    bucket = check_store(store)
    if bucket is not None:
        checks.append(bucket)
    if database.status is Status.OK:
        readable = bucket is None or bucket.status is Status.OK  # uploads and sealing read it
        hour = now.replace(minute=0, second=0, microsecond=0)
        checks += [check_manifest(db, org_public_key, now.date()), check_retention(db, now)]
        checks += [check_uploads(db, store, ttl_hours, hour)] if readable else []
        checks += [check_sources(db)]
        checks += [check_sealing(db, store, org_public_key)] if readable else []
    return Report(tuple(checks))
