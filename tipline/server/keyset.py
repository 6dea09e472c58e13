"""The installed signed key manifest: which recipient keys submissions must be sealed to."""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..crypto.errors import TiplineError
from ..crypto.manifest import KeyManifest, verify_manifest
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
    return signed.manifest


def current(db: Session, org_public_key: bytes) -> Current | None:
    """The manifest in force, checked again against the org key (the database is not trusted
    more than a file would be). None when none is installed or it no longer verifies, e.g. it
    expired: then the tip line takes no submissions rather than seal to stale keys.
    """
    row = db.execute(
        select(InstalledManifest.file).order_by(InstalledManifest.version.desc()).limit(1)
    ).first()
    if row is None:
        return None
    return _verified(row.file, org_public_key, datetime.datetime.now(datetime.UTC).date())


@functools.lru_cache(maxsize=8)
def _verified(file: bytes, org_public_key: bytes, today: datetime.date) -> Current | None:
    """Verification is pure, so its result is kept per file, key and day (every request asks)."""
    try:
        signed = verify_manifest(file, org_public_key, today)
    except TiplineError:
        return None
    return Current(signed.manifest, file)
