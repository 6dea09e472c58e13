"""Admin operations shared by the CLI and the TUI: the org key, manifests, public key files."""

from __future__ import annotations

import datetime
from pathlib import Path

from ..crypto import keys
from ..crypto.errors import ManifestError
from ..crypto.manifest import sign_manifest
from .errors import KeyringError, UsageError
from .sealed import write_atomic
from .vault import Vault, today


def create_org(vault: Vault) -> str:
    """Create the org signing key; returns its fingerprint."""
    if vault.keyring.org is not None:
        raise KeyringError("this vault already has an org key")
    vault.keyring.org = keys.OrgSecret.generate()
    vault.save_keyring()
    return vault.keyring.org.public.fingerprint


def org_public(vault: Vault) -> keys.OrgPublic:
    """The org public key (for the server's installation)."""
    if vault.keyring.org is None:
        raise KeyringError("this vault has no org key (tipline-desk keys org-create)")
    return vault.keyring.org.public


def sign_manifest_file(vault: Vault, out: Path, days: int = 180) -> tuple[int, int]:
    """Sign a manifest of the active keys into ``out``; returns (version, number of keys)."""
    ring = vault.keyring
    if ring.org is None:
        raise KeyringError("this vault has no org key (tipline-desk keys org-create)")
    active = [r.secret.public for r in ring.active()]
    if not active:
        raise KeyringError("there is no active key to put in a manifest")
    version = ring.manifest_version + 1
    issued = today()
    try:
        data = sign_manifest(
            ring.org, version, active, issued, issued + datetime.timedelta(days=days)
        )
    except ManifestError as exc:
        raise KeyringError(exc.detail) from exc
    write_new(out, data)
    ring.manifest_version = version  # versions only go up, even if this file is lost
    vault.save_keyring()
    return version, len(active)


def write_new(out: Path, data: bytes) -> None:
    """Write a new file atomically; never replace an existing one."""
    if out.exists():
        raise UsageError(f"{out} already exists")
    write_atomic(out, data)
