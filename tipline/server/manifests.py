"""Installing a signed key manifest, in two steps: a summary of what changes (keys added,
kept and retired), then the install itself. Both the admin page and ``tipline-server
install-manifest`` use it; ``keyset.install`` does the checks again at the moment it installs.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ..crypto.errors import ManifestError
from ..crypto.manifest import MAX_SIGNED_MANIFEST, KeyManifest, verify_manifest
from . import keyset


@dataclass(frozen=True)
class Summary:
    """What installing a manifest would change."""

    version: int
    installed_version: int | None
    expires: datetime.date
    added: tuple[tuple[str, str], ...]  # (key id hex, label)
    kept: tuple[tuple[str, str], ...]
    retired: tuple[tuple[str, str], ...]

    def lines(self) -> list[str]:
        """The summary as plain lines, for a terminal."""
        out = [
            f"key manifest version {self.version} "
            f"(installed now: {self.installed_version or 'none'}), "
            f"expires {self.expires.isoformat()}"
        ]
        for title, keys in (("added", self.added), ("kept", self.kept), ("retired", self.retired)):
            for key_id, label in keys:
                out.append(f"  {title:8} {key_id}  {label}")
        return out


def _pairs(manifest: KeyManifest | None) -> dict[str, str]:
    if manifest is None:
        return {}
    return {r.key_id.hex(): r.label for r in manifest.recipients}


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
        added=tuple((k, v) for k, v in after.items() if k not in before),
        kept=tuple((k, v) for k, v in after.items() if k in before),
        retired=tuple((k, v) for k, v in before.items() if k not in after),
    )


def install(db: Session, data: bytes, org_public_key: bytes) -> KeyManifest:
    """Install (every rule checked again: a newer manifest may have arrived meanwhile)."""
    if len(data) > MAX_SIGNED_MANIFEST:
        raise ManifestError("the file is larger than a signed manifest can be")
    return keyset.install(db, data, org_public_key)
