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

from ..crypto.errors import TiplineError
from ..crypto.manifest import verify_manifest
from . import keyset
from .blobs import BlobStore
from .models import AuditEntry, InstalledManifest, Reply, Source, Submission, Upload
from .uploads import idle_uploads

WARN_DAYS = 30  # warn this many days before the manifest expires
RETENTION_LATE = datetime.timedelta(hours=36)  # the timer runs daily; a day and a half is late
HEADER_SCAN_LIMIT = 20_000  # items whose envelope header is read for "sealed only to retired keys"
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
            "database", Status.FAIL, f"the database does not answer ({type(exc).__name__})"
        )
    return Check("database", Status.OK, "the database answers")


def check_disk(store: BlobStore) -> Check:
    """Free space where blobs are written, against the floor below which tips are refused."""
    try:
        free = shutil.disk_usage(store.root).free
        writable = store.root.is_dir()
    except OSError as exc:
        return Check("disk", Status.FAIL, f"the blob folder cannot be read ({exc.strerror})")
    figures = {"free_bytes": free, "floor_bytes": store.min_free}
    if not writable:
        return Check("disk", Status.FAIL, "the blob folder is missing", figures)
    if free < store.min_free:
        return Check(
            "disk",
            Status.FAIL,
            f"{_size(free)} free, below the floor of {_size(store.min_free)}: new tips are refused",
            figures,
        )
    if free < 2 * store.min_free:
        return Check(
            "disk",
            Status.WARN,
            f"{_size(free)} free, less than twice the floor of {_size(store.min_free)}",
            figures,
        )
    return Check("disk", Status.OK, f"{_size(free)} free (floor {_size(store.min_free)})", figures)


def check_manifest(db: Session, org_public_key: bytes, today: datetime.date) -> Check:
    """The key manifest in force and its expiry; why none is, when none is."""
    current = keyset.current(db, org_public_key)
    if current is None:
        newest = db.scalar(
            select(InstalledManifest.file).order_by(InstalledManifest.version.desc()).limit(1)
        )
        reason = "none is installed"
        if newest is not None:
            try:
                verify_manifest(bytes(newest), org_public_key, today)
            except TiplineError as exc:
                reason = f"the newest one is refused: {exc.message}"
        return Check(
            "manifest",
            Status.FAIL,
            f"no key manifest is in force ({reason}): the tip line takes no submissions",
        )
    manifest = current.manifest
    left = (manifest.expires - today).days
    figures = {
        "version": manifest.version,
        "expires": manifest.expires.isoformat(),
        "days_left": left,
        "keys": len(manifest.recipients),
    }
    said = (
        f"version {manifest.version}, {len(manifest.recipients)} keys, expires {manifest.expires}"
    )
    if left <= WARN_DAYS:
        return Check(
            "manifest",
            Status.WARN,
            f"{said}: {left} days left; sign a new one on the signing desk before then",
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
            "retention has never run (is tipline-retention.timer enabled?)",
        )
    figures = {"last_run": last.at.isoformat(sep=" "), "removed": last.detail}
    said = f"last ran {last.at:%Y-%m-%d %H:%M} UTC and removed {last.detail}"
    if now - last.at > RETENTION_LATE:
        return Check("retention", Status.WARN, f"{said}; it should run daily", figures)
    return Check("retention", Status.OK, said, figures)


def check_uploads(db: Session, store: BlobStore, ttl_hours: int, hour: datetime.datetime) -> Check:
    """Resumable uploads under way, and abandoned ones (idle past the time to live, by the
    rule that removes them: ``uploads.idle_uploads``) that retention should have removed."""
    pending = db.scalar(select(func.count()).select_from(Upload)) or 0
    abandoned = len(idle_uploads(db, store, ttl_hours + 1, hour))
    figures = {"pending": pending, "abandoned": abandoned}
    if abandoned:
        return Check(
            "uploads",
            Status.WARN,
            f"{pending} unfinished uploads, {abandoned} idle for more than {ttl_hours} hours "
            "(removed by the next retention run)",
            figures,
        )
    return Check("uploads", Status.OK, f"{pending} unfinished uploads", figures)


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
            f"{count} sources never sent anything (retention removes them after a day)",
            figures,
        )
    return Check("sources", Status.OK, "no source without a submission", figures)


def check_sealing(db: Session, store: BlobStore, org_public_key: bytes) -> Check:
    """Submissions whose every recipient key has left the manifest: no desk key in use opens
    them, so they wait for a desk that still holds a retired key (or for retention). Replies are
    sealed to sources' keys, not the manifest's, so they are not counted. At most
    ``HEADER_SCAN_LIMIT`` headers are read (each is one small read of a blob's first bytes)."""
    from .transfer import sealed_to  # reads only the envelope's public header

    current = keyset.current(db, org_public_key)
    if current is None:
        return Check("sealing", Status.WARN, "no manifest in force to compare with")
    in_force = set(current.manifest.key_ids())
    only_retired = scanned = 0
    for item_id in db.scalars(select(Submission.id).limit(HEADER_SCAN_LIMIT)):
        scanned += 1
        try:
            ids = sealed_to(store, "submissions", item_id)
        except (OSError, TiplineError):
            continue  # a missing blob is not this check's business
        if ids and not in_force.intersection(ids):
            only_retired += 1
    figures = {"sealed_only_to_retired": only_retired, "scanned": scanned}
    if only_retired:
        return Check(
            "sealing",
            Status.WARN,
            f"{only_retired} submissions are sealed only to retired keys: keep those keys' "
            "desk until they are read",
            figures,
        )
    return Check("sealing", Status.OK, "every submission is sealed to a key in force", figures)


def report(
    db: Session,
    store: BlobStore,
    org_public_key: bytes,
    ttl_hours: int,
    now: datetime.datetime | None = None,
) -> Report:
    """Every check, as of ``now`` (UTC, naive; the current time by default)."""
    now = now or datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    database = check_database(db)
    checks = [database, check_disk(store)]
    if database.status is Status.OK:
        checks += [
            check_manifest(db, org_public_key, now.date()),
            check_retention(db, now),
            check_uploads(db, store, ttl_hours, now.replace(minute=0, second=0, microsecond=0)),
            check_sources(db),
            check_sealing(db, store, org_public_key),
        ]
    return Report(tuple(checks))
