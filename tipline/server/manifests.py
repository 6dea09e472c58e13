"""Installing a signed key manifest, in two steps: a summary of what changes (keys added,
kept and retired), then the install itself. Both the admin page and ``tipline-server
install-manifest`` use it; ``keyset.install`` does the checks again at the moment it installs.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..crypto.errors import ManifestError
from ..crypto.manifest import MAX_SIGNED_MANIFEST, KeyManifest, verify_manifest
from . import keyset, transfer
from .blobs import Store
from .models import Account, Submission

MAX_STALE = 1000  # items one page lists; the rest are counted as "more"


@dataclass(frozen=True)
class Summary:
    """What installing a manifest would change."""

    version: int
    installed_version: int | None
    expires: datetime.date
    added: tuple[keyset.KeyName, ...]
    kept: tuple[keyset.KeyName, ...]
    retired: tuple[keyset.KeyName, ...]
    unknown_accounts: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """The summary as plain lines, for a terminal."""
        out = [
            f"key manifest version {self.version} "
            f"(installed now: {self.installed_version or 'none'}), "
            f"expires {self.expires.isoformat()}"
        ]
        for title, keys in (("added", self.added), ("kept", self.kept), ("retired", self.retired)):
            for name in keys:
                out.append(f"  {title:8} {name.short_id}  {name.account or '-':<16} {name.label}")
        return out


@dataclass(frozen=True)
class StaleItem:
    """A stored submission none of whose keys is in the manifest in force."""

    id: str
    source_id: str
    received: datetime.date
    keys: tuple[keyset.KeyName, ...]


def _pairs(manifest: KeyManifest | None) -> dict[bytes, keyset.KeyName]:
    if manifest is None:
        return {}
    return {r.key_id: keyset.KeyName.of(r) for r in manifest.recipients}


def preview(db: Session, data: bytes, org_public_key: bytes) -> Summary:
    """Verify ``data`` exactly as the install would (``ManifestError`` if it is refused) and
    say which keys it adds, keeps and retires compared with the manifest in force.
    """
    if len(data) > MAX_SIGNED_MANIFEST:
        raise ManifestError("the file is larger than a signed manifest can be")
    today = datetime.datetime.now(datetime.UTC).date()
    installed = keyset.installed_version(db)
    new = verify_manifest(data, org_public_key, today, installed).manifest
    now = keyset.current(db, org_public_key)
    before, after = _pairs(now.manifest if now else None), _pairs(new)
    return Summary(
        version=new.version,
        installed_version=installed,
        expires=new.expires,
        added=tuple(v for k, v in after.items() if k not in before),
        kept=tuple(v for k, v in after.items() if k in before),
        retired=tuple(v for k, v in before.items() if k not in after),
        unknown_accounts=_unknown_accounts(db, new),
    )


def sealed_only_to_retired(
    db: Session, store: Store, org_public_key: bytes, limit: int = MAX_STALE
) -> tuple[list[StaleItem], bool]:
    """Submissions still sealed only to keys the manifest in force no longer lists (after a
    rotation or a leak: the desk that holds the old key should re-wrap them, or they should be
    exported and deleted). Reads only envelope headers. Returns at most ``limit`` items, oldest
    first, and whether there were more. With no manifest in force, every key counts as retired.
    """
    now = keyset.current(db, org_public_key)
    active = now.manifest.key_ids() if now else frozenset()
    names = keyset.known_keys(db, org_public_key)
    found: list[StaleItem] = []
    query = select(Submission).order_by(Submission.received, Submission.id)
    for sub in db.scalars(query).yield_per(500):
        ids = transfer.sealed_to(store, "submissions", sub.id)
        if not ids or active & set(ids):
            continue
        if len(found) == limit:
            return found, True
        keys = tuple(transfer.name_of(names, k) for k in ids)
        found.append(StaleItem(sub.id, sub.source_id, sub.received, keys))
    return found, False


def install(db: Session, data: bytes, org_public_key: bytes) -> KeyManifest:
    """Install (every rule checked again: a newer manifest may have arrived meanwhile)."""
    if len(data) > MAX_SIGNED_MANIFEST:
        raise ManifestError("the file is larger than a signed manifest can be")
    return keyset.install(db, data, org_public_key)


def _unknown_accounts(db: Session, manifest: KeyManifest) -> tuple[str, ...]:
    """Accounts the manifest names that this server does not have: a typo on the signing desk,
    or accounts not made yet (the installer installs the first manifest before any account).
    Shown as a warning, not refused, so a first install and an urgent rotation still work."""
    named = {r.account for r in manifest.recipients if r.account}
    known = set(db.scalars(select(Account.username).where(Account.username.in_(named))))
    return tuple(sorted(named - known))
