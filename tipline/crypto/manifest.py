"""Signed key manifests: which recipient keys submissions are sealed to (docs/SPEC.md §3).

The manifest is signed by the org key held offline. The server and the browser trust only the
org public key they were configured with, never one carried by the manifest itself.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from . import keys
from .encoding import (
    MAX_SAFE_INTEGER,
    b64d,
    b64e,
    dump_json,
    expect_date,
    expect_header,
    expect_int,
    expect_label,
    expect_members,
    hexd,
    load_json,
)
from .errors import ManifestError
from .primitives import SIG_KEY_MANIFEST

MAX_KEY_MANIFEST = 65536
MAX_SIGNED_MANIFEST = 96 * 1024
MAX_RECIPIENTS = 32
# Body versions a reader accepts: 1 (label only), 2 (each entry also names its staff account).
BODY_VERSIONS = (1, 2)
ISSUED_SLACK = datetime.timedelta(days=1)


@dataclass(frozen=True)
class KeyManifest:
    """The body of a key manifest."""

    version: int
    issued: datetime.date
    expires: datetime.date
    org_public_key: bytes
    recipients: tuple[keys.RecipientPublic, ...]
    body_v: int = 2

    def to_json(self) -> bytes:
        """The body bytes that get signed."""
        return dump_json(
            {
                "type": "tipline-key-manifest",
                "v": self.body_v,
                "version": self.version,
                "issued": self.issued.isoformat(),
                "expires": self.expires.isoformat(),
                "org_public_key": b64e(self.org_public_key),
                "recipients": [self._entry(r) for r in self.recipients],
            }
        )

    def _entry(self, r: keys.RecipientPublic) -> dict[str, object]:
        entry: dict[str, object] = {
            "key_id": r.key_id.hex(),
            "public_key": b64e(r.public_key),
            "label": r.label,
        }
        if self.body_v >= 2:
            entry["account"] = r.account
        return entry

    def key_ids(self) -> frozenset[bytes]:
        """The key ids of every active recipient."""
        return frozenset(r.key_id for r in self.recipients)


@dataclass(frozen=True)
class SignedManifest:
    """A verified manifest with the exact file it came from (to store and serve as is)."""

    manifest: KeyManifest
    file: bytes


def sign_manifest(
    org: keys.OrgSecret,
    version: int,
    recipients: Sequence[keys.RecipientPublic],
    issued: datetime.date,
    expires: datetime.date,
    body_v: int = 2,
) -> bytes:
    """Build, check and sign a manifest; returns the signed manifest file. ``body_v`` 1 exists
    only to write the vectors of older readers."""
    body = KeyManifest(version, issued, expires, org.public.public_key, tuple(recipients), body_v)
    body_bytes = body.to_json()
    _parse_body(body_bytes)  # refuse to sign anything a reader would refuse
    signature = org.sign(SIG_KEY_MANIFEST + body_bytes)
    return dump_json(
        {
            "type": "tipline-signed-key-manifest",
            "v": 1,
            "body": b64e(body_bytes),
            "signature": b64e(signature),
        }
    )


def verify_manifest(
    data: bytes,
    org_public_key: bytes,
    today: datetime.date,
    installed_version: int | None = None,
) -> SignedManifest:
    """Apply the acceptance rules of docs/SPEC.md §3, in their order.

    ``installed_version`` is the version already installed (the server passes it; the browser
    has none). Raises ``ManifestError`` saying which rule failed.
    """
    outer = load_json(data, MAX_SIGNED_MANIFEST, ManifestError, "signed manifest")
    expect_header(outer, "tipline-signed-key-manifest", ManifestError, "signed manifest")
    expect_members(outer, {"type", "v", "body", "signature"}, ManifestError, "signed manifest")
    body_bytes = b64d(outer["body"], None, ManifestError, "body")
    signature = b64d(outer["signature"], 64, ManifestError, "signature")
    if len(body_bytes) > MAX_KEY_MANIFEST:
        raise ManifestError(f"the body is larger than {MAX_KEY_MANIFEST} bytes")
    if not keys.verify_signature(org_public_key, SIG_KEY_MANIFEST + body_bytes, signature):
        raise ManifestError("the signature does not verify against this tip line's org key")
    body = _parse_body(body_bytes)
    if body.org_public_key != org_public_key:
        raise ManifestError("it names a different org key")
    if today > body.expires:
        raise ManifestError(f"it expired on {body.expires.isoformat()}")
    if today < body.issued - ISSUED_SLACK:
        raise ManifestError(f"it is dated in the future ({body.issued.isoformat()})")
    if installed_version is not None and body.version <= installed_version:
        raise ManifestError(
            f"its version {body.version} is not newer than the installed version "
            f"{installed_version}"
        )
    return SignedManifest(body, data)


def _parse_body(data: bytes) -> KeyManifest:
    obj = load_json(data, MAX_KEY_MANIFEST, ManifestError, "manifest body")
    body_v = obj.get("v")
    if (
        obj.get("type") != "tipline-key-manifest"
        or body_v not in BODY_VERSIONS
        or (isinstance(body_v, bool))
    ):
        raise ManifestError("manifest body is not a version 1 or 2 tipline-key-manifest document")
    expect_members(
        obj,
        {"type", "v", "version", "issued", "expires", "org_public_key", "recipients"},
        ManifestError,
        "manifest body",
    )
    version = expect_int(obj["version"], 1, MAX_SAFE_INTEGER, ManifestError, "version")
    issued = expect_date(obj["issued"], ManifestError, "issued")
    expires = expect_date(obj["expires"], ManifestError, "expires")
    if issued > expires:
        raise ManifestError("it expires before it is issued")
    org_pk = b64d(obj["org_public_key"], 32, ManifestError, "org_public_key")
    entries = obj["recipients"]
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_RECIPIENTS:
        raise ManifestError(f"it must list 1 to {MAX_RECIPIENTS} recipients")
    recipients = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise ManifestError("a recipient must be a JSON object")
        members = {"key_id", "public_key", "label"} | ({"account"} if body_v == 2 else set())
        expect_members(entry, members, ManifestError, "recipient")
        pk = b64d(entry["public_key"], 32, ManifestError, "public_key")
        kid = hexd(entry["key_id"], keys.KEY_ID_BYTES, ManifestError, "key_id")
        if kid != keys.key_id(pk):
            raise ManifestError("a recipient's key id does not match its public key")
        label = expect_label(entry["label"], keys.MAX_LABEL, ManifestError, "label")
        account = entry.get("account")
        if account is not None:
            account = keys.expect_account(account, ManifestError)
        recipients.append(keys.RecipientPublic(pk, label, account))
    if len({r.public_key for r in recipients}) != len(recipients):
        raise ManifestError("a recipient key is listed twice")
    return KeyManifest(version, issued, expires, org_pk, tuple(recipients), body_v)
