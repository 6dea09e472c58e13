"""The vault's keys: journalists' recipient keys (active or retired) and the org signing key.

The keyring is one JSON document sealed under the vault key. Retired keys stay in it so that
everything already received still opens.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, replace
from typing import Any

from ..crypto import keys
from ..crypto.encoding import (
    b64d,
    b64e,
    dump_json,
    expect_header,
    expect_int,
    expect_members,
    load_json,
)
from ..crypto.errors import KeyFileError
from .errors import AmbiguousError, KeyringError, NotFoundError, VaultDamagedError

MAX_KEYRING = 1 << 20
MAX_KEYS = 1000
STATES = ("active", "retired", "compromised")


@dataclass(frozen=True)
class Recipient:
    """A journalist's key as the vault keeps it."""

    secret: keys.RecipientSecret
    state: str
    created: str
    retired: str | None = None

    @property
    def key_id(self) -> str:
        """The key id as hex."""
        return self.secret.public.key_id.hex()


@dataclass
class Keyring:
    """Every key the vault holds."""

    recipients: list[Recipient] = field(default_factory=list)
    org: keys.OrgSecret | None = None
    manifest_version: int = 0

    def active(self) -> list[Recipient]:
        """Keys that new envelopes are sealed to."""
        return [r for r in self.recipients if r.state == "active"]

    def identities(self) -> list[bytes]:
        """Every secret key, retired ones included, so old envelopes still open."""
        return [r.secret.secret_key for r in self.recipients]

    def find(self, prefix: str) -> Recipient:
        """The key whose id starts with ``prefix`` (or whose label is exactly it)."""
        prefix = prefix.strip().lower()
        hits = [r for r in self.recipients if r.key_id.startswith(prefix) and len(prefix) >= 4]
        hits = hits or [r for r in self.recipients if r.secret.label.lower() == prefix]
        if not hits:
            raise NotFoundError(f"no key {prefix!r} in this vault")
        if len(hits) > 1:
            raise AmbiguousError(prefix)
        return hits[0]

    def add(self, label: str, today: datetime.date) -> Recipient:
        """Generate a new active recipient key."""
        if len(self.recipients) >= MAX_KEYS:
            raise KeyringError(f"a vault holds at most {MAX_KEYS} keys")
        if len(self.active()) >= 32:
            raise KeyringError("a key manifest holds at most 32 active keys; retire one first")
        try:
            secret = keys.RecipientSecret.generate(label)
        except KeyFileError as exc:
            raise KeyringError(exc.detail) from exc
        entry = Recipient(secret, "active", today.isoformat())
        self.recipients.append(entry)
        return entry

    def retire(self, prefix: str, today: datetime.date, compromised: bool = False) -> Recipient:
        """Stop sealing to a key; keep its secret so old items still open."""
        entry = self.find(prefix)
        if entry.state != "active" and not compromised:
            raise KeyringError(f"key {entry.key_id} is already {entry.state}")
        if entry.state == "active" and len(self.active()) == 1:
            raise KeyringError("that is the last active key; add or rotate first")
        new = replace(
            entry, state="compromised" if compromised else "retired", retired=today.isoformat()
        )
        self.recipients[self.recipients.index(entry)] = new
        return new

    def rotate(self, prefix: str, today: datetime.date) -> tuple[Recipient, Recipient]:
        """Replace an active key by a new one with the same label."""
        old = self.find(prefix)
        if old.state != "active":
            raise KeyringError(f"key {old.key_id} is {old.state}, not active")
        new = self.add(old.secret.label, today)
        retired = self.retire(old.key_id, today)
        return retired, new

    def to_json(self) -> bytes:
        """The sealed document's plaintext."""
        return dump_json(
            {
                "type": "tipline-desk-keyring",
                "v": 1,
                "org_seed": b64e(self.org.seed) if self.org else None,
                "manifest_version": self.manifest_version,
                "recipients": [
                    {
                        "label": r.secret.label,
                        "secret_key": b64e(r.secret.secret_key),
                        "state": r.state,
                        "created": r.created,
                        "retired": r.retired,
                    }
                    for r in self.recipients
                ],
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> Keyring:
        """Parse the keyring, checking every field."""
        obj = load_json(data, MAX_KEYRING, VaultDamagedError, "keyring")
        expect_header(obj, "tipline-desk-keyring", VaultDamagedError, "keyring")
        expect_members(
            obj,
            {"type", "v", "org_seed", "manifest_version", "recipients"},
            VaultDamagedError,
            "keyring",
        )
        org = None
        if obj["org_seed"] is not None:
            org = keys.OrgSecret(b64d(obj["org_seed"], 32, VaultDamagedError, "org key"))
        version = expect_int(obj["manifest_version"], 0, 2**53 - 1, VaultDamagedError, "version")
        raw = obj["recipients"]
        if not isinstance(raw, list) or len(raw) > MAX_KEYS:
            raise VaultDamagedError("keyring recipients")
        return cls([_recipient(r) for r in raw], org, version)


def _recipient(value: Any) -> Recipient:
    if not isinstance(value, dict):
        raise VaultDamagedError("a keyring entry is not an object")
    expect_members(
        value, {"label", "secret_key", "state", "created", "retired"}, VaultDamagedError, "entry"
    )
    if value["state"] not in STATES:
        raise VaultDamagedError("a keyring entry has an unknown state")
    secret = keys.RecipientSecret(
        b64d(value["secret_key"], 32, VaultDamagedError, "secret key"), str(value["label"])
    )
    return Recipient(secret, value["state"], str(value["created"]), value["retired"])
