"""The vault's keys: journalists' recipient keys (active or retired) and the org signing key.

The keyring is one JSON document sealed under the vault key. Retired keys stay in it so that
everything already received still opens.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, replace
from typing import Any

from nacl.signing import SigningKey

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
# What a vault is for (docs/DESK.md §1): a signing desk holds the org key and other people's
# public keys; a journalist desk holds its own secret keys and the org public key; "both" is a
# one-person newsroom that said so at init. Vaults from before roles are "both".
ROLES = ("signer", "journalist", "both")


@dataclass(frozen=True)
class Recipient:
    """A journalist's key as the vault keeps it."""

    public: keys.RecipientPublic
    state: str
    created: str
    retired: str | None = None
    secret: keys.RecipientSecret | None = None  # None: someone else's key, known by request
    # The Ed25519 seed the secret is derived from (SPEC §3.1): it signs this desk's triage
    # updates (SPEC §8.5). None for someone else's key, a retired one, or one made before.
    signing_seed: bytes | None = None

    @property
    def key_id(self) -> str:
        """The key id as hex."""
        return self.public.key_id.hex()

    @property
    def short_id(self) -> str:
        """The key id's first 8 hex digits, as people read it."""
        return self.key_id[:8]

    @property
    def label(self) -> str:
        """The key's label."""
        return self.public.label

    @property
    def account(self) -> str | None:
        """The staff account the key belongs to, if known."""
        return self.public.account


@dataclass
class Keyring:
    """Every key the vault holds."""

    recipients: list[Recipient] = field(default_factory=list)
    org: keys.OrgSecret | None = None
    manifest_version: int = 0
    role: str = "both"
    org_public: bytes | None = None  # a journalist desk's copy of the org public key
    manifest_keys: list[str] | None = None  # key ids of the last manifest signed here

    def active(self) -> list[Recipient]:
        """Keys that new envelopes are sealed to."""
        return [r for r in self.recipients if r.state == "active"]

    def identities(self) -> list[bytes]:
        """Every secret key, retired ones included, so old envelopes still open."""
        return [r.secret.secret_key for r in self.recipients if r.secret is not None]

    def find(self, query: str, among: list[Recipient] | None = None) -> Recipient:
        """The one key named by ``query``: its account, a key id prefix (4 digits or more) or a
        label prefix. When several match, active keys win over retired ones; if still several,
        ``AmbiguousError`` lists them."""
        pool = self.recipients if among is None else among
        text = query.strip().lower()
        if not text:
            raise NotFoundError("name a key by its account, key id or label")
        hits = [r for r in pool if (r.account or "") == text]
        hits = hits or [r for r in pool if len(text) >= 4 and r.key_id.startswith(text)]
        hits = hits or [r for r in pool if r.label.lower().startswith(text)]
        if not hits:
            raise NotFoundError(f"no key {query.strip()!r} in this vault (tipline-desk keys list)")
        active = [r for r in hits if r.state == "active"]
        if len(hits) > 1 and len(active) == 1:
            return active[0]
        if len(hits) > 1:
            listing = "; ".join(f"{r.short_id} {r.label} ({r.state})" for r in hits[:10])
            raise AmbiguousError(f"{query.strip()!r} matches {len(hits)} keys: {listing}")
        return hits[0]

    def signer(self, among: frozenset[str]) -> Recipient | None:
        """This desk's active key that can sign triage updates and is one of ``among`` (the
        active key ids of the manifest the desk holds)."""
        for r in self.active():
            if r.signing_seed is not None and r.key_id in among:
                return r
        return None

    def drop_signing(self, key_ids: list[str]) -> list[str]:
        """Forget the signing seeds of these keys (retired by the signing desk); returns the
        short ids of the ones that had one."""
        gone = []
        for n, r in enumerate(self.recipients):
            if r.key_id in key_ids and r.signing_seed is not None:
                self.recipients[n] = replace(r, signing_seed=None)
                gone.append(r.short_id)
        return gone

    def _room(self) -> None:
        if len(self.recipients) >= MAX_KEYS:
            raise KeyringError(f"a vault holds at most {MAX_KEYS} keys")
        if len(self.active()) >= 32:
            raise KeyringError("a key manifest holds at most 32 active keys; retire one first")

    def add(self, label: str, today: datetime.date, account: str | None = None) -> Recipient:
        """Generate a new active recipient key (held in this vault)."""
        self._room()
        signing = SigningKey.generate()  # the recipient key is derived from it, as in §3.1
        try:
            secret = keys.RecipientSecret(bytes(signing.to_curve25519_private_key()), label)
            if account is not None:
                keys.expect_account(account, KeyFileError)
        except KeyFileError as exc:
            raise KeyringError(exc.detail) from exc
        public = keys.RecipientPublic(secret.public.public_key, label, account)
        entry = Recipient(
            public, "active", today.isoformat(), secret=secret, signing_seed=bytes(signing)
        )
        self.recipients.append(entry)
        return entry

    def add_own(
        self,
        secret: keys.RecipientSecret,
        account: str,
        today: datetime.date,
        signing_seed: bytes | None = None,
    ) -> Recipient:
        """Keep a key this desk made for a key request (active once the signer accepts it),
        with the Ed25519 seed it is derived from."""
        self._room()
        public = keys.RecipientPublic(secret.public.public_key, secret.label, account)
        entry = Recipient(
            public, "active", today.isoformat(), secret=secret, signing_seed=signing_seed
        )
        self.recipients.append(entry)
        return entry

    def add_public(self, public: keys.RecipientPublic, today: datetime.date) -> Recipient:
        """Add someone else's key from an accepted request (no secret here)."""
        self._room()
        if any(r.key_id == public.key_id.hex() for r in self.recipients):
            raise KeyringError(f"key {public.key_id.hex()[:8]} is already in this vault")
        entry = Recipient(public, "active", today.isoformat())
        self.recipients.append(entry)
        return entry

    def retire(self, prefix: str, today: datetime.date, compromised: bool = False) -> Recipient:
        """Stop sealing to a key; keep its secret so old items still open."""
        entry = self.find(prefix)
        if entry.state != "active" and not compromised:
            raise KeyringError(f"key {entry.key_id} is already {entry.state}")
        if entry.state == "active" and len(self.active()) == 1:
            raise KeyringError("that is the last active key; accept (or add) another one first")
        new = replace(  # a retired key signs nothing more: its signing seed goes
            entry,
            state="compromised" if compromised else "retired",
            retired=today.isoformat(),
            signing_seed=None,
        )
        self.recipients[self.recipients.index(entry)] = new
        return new

    def rotate(self, prefix: str, today: datetime.date) -> tuple[Recipient, Recipient]:
        """Replace an active key by a new one with the same label."""
        old = self.find(prefix)
        if old.state != "active":
            raise KeyringError(f"key {old.key_id} is {old.state}, not active")
        if old.secret is None:
            raise KeyringError(
                f"key {old.short_id} is held on its owner's desk: they send a new key request "
                "(tipline-desk keys request), you accept it and retire this one"
            )
        new = self.add(old.label, today, old.account)
        retired = self.retire(old.key_id, today)
        return retired, new

    def to_json(self) -> bytes:
        """The sealed document's plaintext."""
        return dump_json(
            {
                "type": "tipline-desk-keyring",
                "v": 1,
                "org_seed": b64e(self.org.seed) if self.org else None,
                "org_public": b64e(self.org_public) if self.org_public else None,
                "role": self.role,
                "manifest_keys": self.manifest_keys,
                "manifest_version": self.manifest_version,
                "recipients": [
                    {
                        "label": r.label,
                        "account": r.account,
                        "public_key": b64e(r.public.public_key),
                        "secret_key": b64e(r.secret.secret_key) if r.secret else None,
                        "signing_seed": b64e(r.signing_seed) if r.signing_seed else None,
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
        # Keyrings from before roles lack role, org_public and the entries' account/public_key.
        obj.setdefault("role", "both")
        obj.setdefault("org_public", None)
        obj.setdefault("manifest_keys", None)
        expect_members(
            obj,
            {
                "type",
                "v",
                "org_seed",
                "org_public",
                "role",
                "manifest_keys",
                "manifest_version",
                "recipients",
            },
            VaultDamagedError,
            "keyring",
        )
        if obj["role"] not in ROLES:
            raise VaultDamagedError("the keyring has an unknown role")
        org = None
        if obj["org_seed"] is not None:
            org = keys.OrgSecret(b64d(obj["org_seed"], 32, VaultDamagedError, "org key"))
        org_public = None
        if obj["org_public"] is not None:
            org_public = b64d(obj["org_public"], 32, VaultDamagedError, "org public key")
        version = expect_int(obj["manifest_version"], 0, 2**53 - 1, VaultDamagedError, "version")
        raw = obj["recipients"]
        if not isinstance(raw, list) or len(raw) > MAX_KEYS:
            raise VaultDamagedError("keyring recipients")
        manifest_keys = obj["manifest_keys"]
        if manifest_keys is not None and (
            not isinstance(manifest_keys, list)
            or len(manifest_keys) > MAX_KEYS
            or not all(isinstance(k, str) and len(k) == 32 for k in manifest_keys)
        ):
            raise VaultDamagedError("keyring manifest keys")
        return cls(
            [_recipient(r) for r in raw], org, version, obj["role"], org_public, manifest_keys
        )


def _recipient(value: Any) -> Recipient:
    if not isinstance(value, dict):
        raise VaultDamagedError("a keyring entry is not an object")
    value.setdefault("account", None)
    value.setdefault("public_key", None)
    value.setdefault("signing_seed", None)  # keyrings from before signed triage updates
    expect_members(
        value,
        {
            "label",
            "account",
            "public_key",
            "secret_key",
            "signing_seed",
            "state",
            "created",
            "retired",
        },
        VaultDamagedError,
        "entry",
    )
    if value["state"] not in STATES:
        raise VaultDamagedError("a keyring entry has an unknown state")
    label, account = str(value["label"]), value["account"]
    if account is not None:
        account = keys.expect_account(account, VaultDamagedError)
    secret = None
    if value["secret_key"] is not None:
        secret = keys.RecipientSecret(
            b64d(value["secret_key"], 32, VaultDamagedError, "secret key"), label
        )
        public_key = secret.public.public_key
    else:
        public_key = b64d(value["public_key"], 32, VaultDamagedError, "public key")
    public = keys.RecipientPublic(public_key, label, account)
    seed = None
    if value["signing_seed"] is not None:
        seed = b64d(value["signing_seed"], 32, VaultDamagedError, "signing seed")
        derived = bytes(SigningKey(seed).to_curve25519_private_key())
        if secret is None or derived != secret.secret_key:
            raise VaultDamagedError("a keyring entry's signing seed is not its key's")
    return Recipient(public, value["state"], str(value["created"]), value["retired"], secret, seed)
