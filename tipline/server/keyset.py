"""The installed signed key manifest: which recipient keys submissions must be sealed to."""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass

from flask import current_app, has_app_context
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..crypto.errors import TiplineError
from ..crypto.keys import RecipientPublic, short_key_id
from ..crypto.manifest import ISSUED_SLACK, KeyManifest, verify_manifest
from . import cache
from .i18n import _, ngettext
from .models import InstalledManifest

WARN_DAYS = 30  # the admin and journalist pages warn this many days before the manifest expires


@dataclass(frozen=True)
class KeyName:
    """How the server names a recipient key to people: account, label and short key id, so a
    rotated key and its replacement (same label) are told apart."""

    key_id: bytes
    label: str
    account: str | None

    @classmethod
    def of(cls, r: RecipientPublic) -> KeyName:
        """The name of a manifest entry."""
        return cls(r.key_id, r.label, r.account)

    @property
    def short_id(self) -> str:
        """The first 8 hex digits of the key id (docs/SPEC.md §2.1)."""
        return short_key_id(self.key_id)

    def __str__(self) -> str:
        return f"{self.label} ({self.account or 'no account'}, {self.short_id})"

    def to_json(self) -> dict[str, object]:
        """For the journalist API."""
        return {
            "key_id": self.key_id.hex(),
            "short_id": self.short_id,
            "label": self.label,
            "account": self.account,
        }


@dataclass(frozen=True)
class Lifetime:
    """The manifest in force and how long it has left, or why there is none."""

    current: Current | None
    reason: str | None  # when none is in force: "none installed", "expired on ...", ...
    days_left: int | None

    @property
    def warn(self) -> bool:
        """Whether to warn that the manifest expires soon."""
        return self.days_left is not None and self.days_left <= WARN_DAYS


@dataclass(frozen=True)
class Current:
    """The manifest in force: the verified body and the exact signed file to serve."""

    manifest: KeyManifest
    file: bytes

    @property
    def version(self) -> int:
        """The manifest's version number."""
        return self.manifest.version


def installed_version(db: Session) -> int | None:
    """The highest version ever installed (None before the first install)."""
    return db.scalar(select(func.max(InstalledManifest.version)))


def install(db: Session, data: bytes, org_public_key: bytes) -> KeyManifest:
    """Verify a signed manifest (all five rules of docs/SPEC.md §3) and make it current.

    Raises ``ManifestError``; a rollback or replay is refused because the version must grow.
    """
    today = datetime.datetime.now(datetime.UTC).date()
    signed = verify_manifest(data, org_public_key, today, installed_version(db))
    db.add(InstalledManifest(version=signed.manifest.version, file=signed.file))
    db.commit()
    if has_app_context():
        cache.of().changed()  # every worker seals to the new keys from its next request on
    return signed.manifest


def current(db: Session, org_public_key: bytes) -> Current | None:
    """The manifest in force, checked again against the org key (the database is not trusted
    more than a file would be). None when none is installed or it no longer verifies, e.g. it
    expired: then the tip line takes no submissions rather than seal to stale keys.

    Within a request the newest file comes from the worker's cache (``cache.py``: refreshed at
    once after an install through the app, within ``cache.TTL_SECONDS`` after any other change);
    it is verified again, against today's date, on every call.
    """
    if has_app_context():
        file = cache.of().get("manifest", lambda: _newest_file(db))
    else:
        file = _newest_file(db)
    if file is None:
        return None
    return _verified(file, org_public_key, datetime.datetime.now(datetime.UTC).date())


def lifetime(db: Session, org_public_key: bytes, today: datetime.date | None = None) -> Lifetime:
    """The manifest in force with its days left, or the reason none is (for the admin)."""
    today = today or datetime.datetime.now(datetime.UTC).date()
    found = current(db, org_public_key)
    if found is not None and today <= found.manifest.expires:
        return Lifetime(found, None, (found.manifest.expires - today).days)
    row = db.execute(
        select(InstalledManifest.file, InstalledManifest.installed)
        .order_by(InstalledManifest.version.desc())
        .limit(1)
    ).first()
    if row is None:
        return Lifetime(None, _("none is installed"), None)
    try:
        # it verified on the day it was installed: read it as of then to say what changed since
        body = verify_manifest(bytes(row.file), org_public_key, row.installed).manifest
    except TiplineError:
        return Lifetime(None, _("the installed one does not verify against the org key"), None)
    if today > body.expires:
        return Lifetime(
            None,
            _(
                "version %(version)s expired on %(date)s",
                version=body.version,
                date=body.expires.isoformat(),
            ),
            None,
        )
    if today < body.issued - ISSUED_SLACK:
        return Lifetime(
            None,
            _(
                "version %(version)s is not valid yet (issued %(date)s)",
                version=body.version,
                date=body.issued.isoformat(),
            ),
            None,
        )
    return Lifetime(None, _("the installed one does not verify against the org key"), None)


def notice(life: Lifetime) -> str | None:
    """The warning every staff page shows: none in force, or expiring within ``WARN_DAYS``."""
    if life.current is None:
        return _(
            "No key manifest is in force (%(reason)s): the tip line takes no submissions.",
            reason=life.reason,
        )
    if life.warn:
        expires = life.current.manifest.expires.isoformat()
        return ngettext(
            "The key manifest expires on %(date)s (%(num)d day left): "
            "an admin renews it on the signing desk (tipline-desk manifest renew).",
            "The key manifest expires on %(date)s (%(num)d days left): "
            "an admin renews it on the signing desk (tipline-desk manifest renew).",
            life.days_left or 0,
            date=expires,
        )
    return None


def notice_context() -> dict[str, object]:
    """Template context for the staff blueprints: ``manifest_notice``."""
    from . import db  # the blueprints' request session

    life = lifetime(db.session(), current_app.config["ORG_PUBLIC_KEY_BYTES"])
    return {"manifest_notice": notice(life)}


def known_keys(db: Session, org_public_key: bytes) -> dict[bytes, KeyName]:
    """Key id → name, from every manifest ever installed (newest wins), so retired keys keep
    their names. Each is read as of the day it was installed, when it verified."""
    names: dict[bytes, KeyName] = {}
    rows = db.execute(
        select(InstalledManifest.file, InstalledManifest.installed).order_by(
            InstalledManifest.version
        )
    ).all()
    for row in rows:
        try:
            body = verify_manifest(bytes(row.file), org_public_key, row.installed).manifest
        except TiplineError:
            continue
        for r in body.recipients:
            names[r.key_id] = KeyName.of(r)
    return names


def _newest_file(db: Session) -> bytes | None:
    """The signed file of the highest installed version."""
    row = db.execute(
        select(InstalledManifest.file).order_by(InstalledManifest.version.desc()).limit(1)
    ).first()
    return None if row is None else bytes(row.file)


@functools.lru_cache(maxsize=8)
def _verified(file: bytes, org_public_key: bytes, today: datetime.date) -> Current | None:
    """Verification is pure, so its result is kept per file, key and day (every request asks)."""
    try:
        signed = verify_manifest(file, org_public_key, today)
    except TiplineError:
        return None
    return Current(signed.manifest, file)
