"""Admin operations shared by the CLI and the TUI: roles, the org key, key requests, manifests,
public key files."""

from __future__ import annotations

import datetime
from pathlib import Path

from nacl.signing import SigningKey

from ..crypto import keys
from ..crypto.errors import KeyFileError, KeyRequestError, ManifestError
from ..crypto.keyrequest import MAX_KEY_REQUEST, KeyRequest, make_request, read_request
from ..crypto.manifest import sign_manifest
from .errors import KeyringError, UsageError
from .keyring import Recipient
from .sealed import read_bounded, write_atomic
from .vault import Vault, today

SIGNING_ROLES = ("signer", "both")
HOLDING_ROLES = ("journalist", "both")


def require_role(vault: Vault, roles: tuple[str, ...], what: str) -> None:
    """Refuse an operation this desk's role does not allow, saying where it belongs."""
    role = vault.keyring.role
    if role in roles:
        return
    if role == "journalist":
        raise KeyringError(
            f"this is a journalist desk: it holds no org key and cannot {what}; "
            "that is done on the signing desk"
        )
    raise KeyringError(
        f"this is a signing desk: it holds no journalist's secret key and cannot {what}; "
        "the journalist does that on their own desk (tipline-desk keys request)"
    )


def create_org(vault: Vault) -> str:
    """Create the org signing key; returns its fingerprint."""
    require_role(vault, SIGNING_ROLES, "create an org key")
    if vault.keyring.org is not None:
        raise KeyringError("this vault already has an org key")
    vault.keyring.org = keys.OrgSecret.generate()
    vault.save_keyring()
    return vault.keyring.org.public.fingerprint


def org_public(vault: Vault) -> keys.OrgPublic:
    """The org public key (for the server's installation and the journalists' desks)."""
    if vault.keyring.org is not None:
        return vault.keyring.org.public
    if vault.keyring.org_public is not None:
        return keys.OrgPublic(vault.keyring.org_public)
    raise KeyringError("this vault has no org key (tipline-desk keys org-create)")


def import_org_public(vault: Vault, file: Path) -> str:
    """Keep the org public key on a journalist desk; returns its fingerprint."""
    try:
        key = keys.load_key_file(read_bounded(file, keys.MAX_KEY_FILE, "the key file"))
    except KeyFileError as exc:
        raise KeyringError(exc.message) from exc
    if not isinstance(key, keys.OrgPublic):
        raise KeyringError("that is not an org public key file (tipline-desk keys org-export)")
    vault.keyring.org_public = key.public_key
    vault.save_keyring()
    return key.fingerprint


def request_key(vault: Vault, account: str, label: str, out: Path) -> Recipient:
    """Make a key on this desk and write its key request (public only) to ``out``."""
    require_role(vault, HOLDING_ROLES, "hold a journalist's key")
    if out.exists():
        raise UsageError(f"{out} already exists")
    signing = SigningKey.generate()  # kept: it signs this desk's triage updates (SPEC §8.5)
    secret, file = make_request(account, label, today(), signing)
    entry = vault.keyring.add_own(secret, account, today(), bytes(signing))
    vault.save_keyring()  # the key is kept before the request leaves, so it can never be lost
    write_new(out, file)
    return entry


def read_key_request(vault: Vault, file: Path) -> KeyRequest:
    """Check a key request against this signing desk: valid, and new. Changes nothing."""
    require_role(vault, SIGNING_ROLES, "accept key requests")
    request = read_request(_read_request_file(file))
    ring = vault.keyring
    if any(r.key_id == request.key_id for r in ring.recipients):
        raise KeyringError(f"key {request.key_id[:8]} is already in this vault")
    return request


def _read_request_file(file: Path) -> bytes:
    try:
        with file.open("rb") as f:
            data = f.read(MAX_KEY_REQUEST + 1)  # at most one byte past the bound, then refused
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror}") from exc
    if len(data) > MAX_KEY_REQUEST:
        raise KeyRequestError(f"the file is larger than {MAX_KEY_REQUEST} bytes")
    return data


def accept_key_request(vault: Vault, request: KeyRequest) -> Recipient:
    """Add a checked request's key; it goes into the next manifest."""
    entry = vault.keyring.add_public(request.public, today())
    vault.save_keyring()
    return entry


def sign_manifest_file(vault: Vault, out: Path, days: int = 180) -> tuple[int, int]:
    """Sign a manifest of the active keys into ``out``; returns (version, number of keys)."""
    require_role(vault, SIGNING_ROLES, "sign a manifest")
    ring = vault.keyring
    if ring.org is None:
        raise KeyringError("this vault has no org key (tipline-desk keys org-create)")
    active = [r.public for r in ring.active()]
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
    ring.manifest_keys = sorted(r.key_id.hex() for r in active)
    vault.save_keyring()
    return version, len(active)


def renew_manifest_file(vault: Vault, out: Path, days: int = 180) -> tuple[int, int]:
    """Sign the same keys as the last manifest again, with a new expiry. Refused when the
    active keys changed since (then the admin means a new manifest, and should say so)."""
    require_role(vault, SIGNING_ROLES, "sign a manifest")
    ring = vault.keyring
    if ring.manifest_keys is None:
        raise KeyringError("this desk has signed no manifest yet (tipline-desk manifest --out)")
    now = sorted(r.key_id for r in ring.active())
    if now != ring.manifest_keys:
        raise KeyringError(
            f"the active keys changed since manifest version {ring.manifest_version}; "
            "sign a new one with tipline-desk manifest --out FILE"
        )
    return sign_manifest_file(vault, out, days)


def write_new(out: Path, data: bytes) -> None:
    """Write a new file atomically; never replace an existing one."""
    if out.exists():
        raise UsageError(f"{out} already exists")
    write_atomic(out, data)
