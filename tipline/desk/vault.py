"""The vault: a folder holding the locked vault key, the sealed keyring, the sealed triage
database and the imported envelopes, which stay exactly as they arrived (ciphertext).

Layout::

    vault.json        what this folder is (no secrets)
    vault.key         the 32-byte vault key, locked under the passphrase (Argon2id + secretbox)
    keyring.sealed    recipient keys and the org key, sealed under the vault key
    triage.sealed     the triage database (SQLite bytes), sealed under the vault key
    items/<id>.env    one envelope per submission or reply

Only one tipline-desk may have a vault open at a time (an advisory lock on ``lock``).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import re
from pathlib import Path
from typing import IO

import nacl.utils

from ..crypto import keys
from ..crypto.errors import LockedSecretError
from . import sealed
from .errors import (
    NotFoundError,
    UsageError,
    VaultBusyError,
    VaultDamagedError,
    VaultExistsError,
    VaultMissingError,
)
from .keyring import MAX_KEYRING, ROLES, Keyring
from .store import Store

MAX_TRIAGE = 4 << 30
MAX_VAULT_KEY = keys.MAX_LOCKED_FILE
ITEM_NAME = re.compile(r"\A[0-9a-f]{32}\.env\Z")
KDF_PRESETS = {
    # name: (opslimit, memlimit); "moderate" is libsodium's recommendation for a desktop.
    "moderate": (3, 256 << 20),
    "sensitive": (4, 1 << 30),
    "interactive": (2, 64 << 20),
    "test": (1, 8 << 20),  # for the test suite only: fast and weak
}
# What a person may choose: the "test" preset is for the test suite's own vaults only.
USER_KDFS = ("moderate", "sensitive", "interactive")
VAULT_INFO = {"type": "tipline-desk-vault", "v": 1}


def today() -> datetime.date:
    """Today in UTC (the only precision any Tipline date has)."""
    return datetime.datetime.now(datetime.UTC).date()


class Vault:
    """An open (unlocked) vault. Use as a context manager, or call ``close``."""

    def __init__(self, path: Path, key: bytes, lock: IO[bytes]) -> None:
        self.path = path
        self._key = key
        self._lock = lock
        self.keyring = Keyring.from_json(
            bytes(sealed.unseal_file(key, "keyring", self.keyring_file, MAX_KEYRING))
        )
        self.store = Store(sealed.unseal_file(key, "triage", self.triage_file, MAX_TRIAGE))

    # --- paths -----------------------------------------------------------------------------

    @property
    def items(self) -> Path:
        """The folder of stored envelopes."""
        return self.path / "items"

    @property
    def keyring_file(self) -> Path:
        """The sealed keyring."""
        return self.path / "keyring.sealed"

    @property
    def triage_file(self) -> Path:
        """The sealed triage database."""
        return self.path / "triage.sealed"

    def item_file(self, item_id: str) -> Path:
        """Where an item's envelope is stored (``item_id`` is 32 hex digits, checked)."""
        if not ITEM_NAME.match(item_id + ".env"):
            raise NotFoundError(f"no item {item_id!r}")
        return self.items / f"{item_id}.env"

    # --- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls, path: Path, passphrase: str, kdf: str = "moderate", role: str = "both"
    ) -> Vault:
        """Make a new, empty vault in ``path`` (which must be empty or not exist) for ``role``
        (``keyring.ROLES``)."""
        if role not in ROLES:
            raise UsageError(f"the role must be one of {', '.join(ROLES)}")
        if len(passphrase) < 8:
            raise UsageError("the passphrase must be at least 8 characters")
        if path.exists() and any(path.iterdir()):
            raise VaultExistsError(str(path))
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        (path / "items").mkdir(mode=0o700, exist_ok=True)
        lock = _acquire(path)
        key = nacl.utils.random(32)
        ops, mem = KDF_PRESETS[kdf]
        sealed.write_atomic(path / "vault.key", keys.lock(key, passphrase, ops, mem))
        sealed.write_atomic(
            path / "keyring.sealed", sealed.seal(key, "keyring", Keyring(role=role).to_json())
        )
        sealed.write_atomic(path / "triage.sealed", sealed.seal(key, "triage", Store().serialize()))
        sealed.write_atomic(path / "vault.json", json.dumps(VAULT_INFO).encode())
        return cls(path, key, lock)

    @classmethod
    def open(cls, path: Path, passphrase: str) -> Vault:
        """Unlock an existing vault; a wrong passphrase is a one-line error."""
        info = path / "vault.json"
        if not info.is_file():
            raise VaultMissingError(str(path))
        try:
            if json.loads(sealed.read_bounded(info, 4096, "vault.json")) != VAULT_INFO:
                raise VaultDamagedError("vault.json is not a version 1 vault")
        except ValueError as exc:
            raise VaultDamagedError("vault.json is not a version 1 vault") from exc
        lock = _acquire(path)
        try:
            data = sealed.read_bounded(path / "vault.key", MAX_VAULT_KEY, "vault.key")
            key = keys.unlock(data, passphrase)
            if len(key) != 32:
                raise LockedSecretError()
            sealed.clean_temps(path)
            sealed.clean_temps(path / "items")
            return cls(path, key, lock)
        except BaseException:
            lock.close()
            raise

    def close(self) -> None:
        """Release the lock (saving nothing: callers save what they change)."""
        self._lock.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- saving ---------------------------------------------------------------------------------

    def save_keyring(self) -> None:
        """Seal and write the keyring atomically."""
        sealed.write_atomic(
            self.keyring_file, sealed.seal(self._key, "keyring", self.keyring.to_json())
        )

    def save_store(self) -> None:
        """Seal and write the triage database atomically, if it changed."""
        if self.store.dirty:
            data = self.store.serialize()
            sealed.write_atomic(self.triage_file, sealed.seal(self._key, "triage", data))
            self.store.dirty = False

    def change_passphrase(self, passphrase: str, kdf: str = "moderate") -> None:
        """Re-lock the vault key under a new passphrase (nothing else changes)."""
        if len(passphrase) < 8:
            raise UsageError("the passphrase must be at least 8 characters")
        ops, mem = KDF_PRESETS[kdf]
        sealed.write_atomic(self.path / "vault.key", keys.lock(self._key, passphrase, ops, mem))

    def stored_item_files(self) -> set[str]:
        """Ids of every envelope file in ``items/``."""
        return {p.name[:-4] for p in self.items.iterdir() if ITEM_NAME.match(p.name)}

    def remove_item(self, item_id: str) -> None:
        """Delete an item's envelope and its triage entry."""
        self.store.remove_item(item_id)
        self.save_store()
        with contextlib.suppress(FileNotFoundError):
            self.item_file(item_id).unlink()


def _acquire(path: Path) -> IO[bytes]:
    """Take the vault's advisory lock, or fail at once if another desk holds it."""
    handle = (path / "lock").open("ab")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        raise VaultBusyError() from exc
    os.chmod(path / "lock", 0o600)
    return handle
