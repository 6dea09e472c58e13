"""The installed signed key manifest: which recipient keys submissions must be sealed to."""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass

from flask import has_app_context
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..crypto.errors import TiplineError
from ..crypto.manifest import KeyManifest, verify_manifest
from . import cache
from .models import InstalledManifest


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
