"""Files sealed under the vault key, and atomic writes.

Each vault file is libsodium's secretstream (XChaCha20-Poly1305, through PyNaCl) under the vault
key, with the file's role as the first chunk's associated data, so one sealed file cannot be
swapped for another, and a FINAL tag on the last chunk, so a truncated one is refused. The
vault key itself is locked under the passphrase with Argon2id and secretbox
(``tipline.crypto.keys.lock``).
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import nacl.bindings as sodium
import nacl.exceptions
import nacl.utils

from ..crypto.stream import Puller
from .errors import VaultDamagedError

MAGIC = b"TLDESK1\x00"
AD_PREFIX = b"tipline/v1/desk/"
CHUNK = 1 << 20
ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
HEADER = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL


def _ad(role: str) -> bytes:
    return MAGIC + AD_PREFIX + role.encode()


def seal(key: bytes, role: str, plaintext: bytes) -> bytes:
    """Encrypt ``plaintext`` for the file called ``role``, in 1 MiB secretstream chunks.

    Chunks (rather than one AEAD call) keep opening a large triage database fast: it is
    decrypted chunk by chunk into one buffer, without a zero-filled copy of the whole.
    """
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    parts = [MAGIC, header]
    view = memoryview(plaintext)
    starts = range(0, max(len(plaintext), 1), CHUNK)
    for n, pos in enumerate(starts):
        last = n == len(starts) - 1
        parts.append(
            sodium.crypto_secretstream_xchacha20poly1305_push(
                state,
                bytes(view[pos : pos + CHUNK]),
                _ad(role) if n == 0 else None,
                TAG_FINAL if last else TAG_MESSAGE,
            )
        )
    return b"".join(parts)


def unseal(key: bytes, role: str, data: bytes) -> bytearray:
    """Decrypt sealed bytes; any change to them, truncation included, is VaultDamagedError."""
    return _unseal(key, role, io.BytesIO(data), len(data))


def unseal_file(key: bytes, role: str, path: Path, limit: int) -> bytearray:
    """Decrypt a sealed file of at most ``limit`` bytes, straight from disk chunk by chunk."""
    try:
        with path.open("rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise VaultDamagedError(f"{path.name} is larger than {limit} bytes")
            return _unseal(key, role, f, size)
    except FileNotFoundError as exc:
        raise VaultDamagedError(f"{path.name} is missing") from exc


def _unseal(key: bytes, role: str, src: io.RawIOBase | io.BufferedIOBase, size: int) -> bytearray:
    damaged = VaultDamagedError(f"{role} does not open under this vault's key")
    start = len(MAGIC) + HEADER
    head = src.read(start)
    if size < start + ABYTES or len(head) != start or head[: len(MAGIC)] != MAGIC:
        raise VaultDamagedError(f"{role} is not a sealed vault file")
    try:
        puller = Puller(key, head[len(MAGIC) :], CHUNK)
    except (nacl.exceptions.CryptoError, ValueError) as exc:
        raise damaged from exc
    body = size - start
    chunks = -(-body // (CHUNK + ABYTES))
    out = bytearray(body - chunks * ABYTES)
    written = 0
    ad: bytes | None = _ad(role)
    inbuf = memoryview(puller.inbuf)
    for n in range(chunks):
        want = min(CHUNK + ABYTES, body)
        got = 0
        while got < want:
            step = src.readinto(inbuf[got:want])
            if not step:
                raise damaged  # the file shrank while it was read
            got += step
        body -= got
        # Straight into the output (a large triage database is opened at every start of the
        # TUI, which must draw within a second): no copy of each chunk on the way.
        result = puller.pull_at(inbuf, 0, got, out, written, ad)
        if result is None:
            raise damaged
        length, tag = result
        if tag != (TAG_FINAL if n == chunks - 1 else TAG_MESSAGE):
            raise damaged  # a missing FINAL is a truncated file
        written += length
        ad = None
    return out


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """Read a whole file of at most ``limit`` bytes (checked before reading)."""
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise VaultDamagedError(f"{what} is larger than {limit} bytes")
            return f.read(limit + 1)
    except FileNotFoundError as exc:
        raise VaultDamagedError(f"{what} is missing") from exc


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(path: Path) -> Path:
    """A temporary name beside ``path``, which ``clean_temps`` recognises."""
    return path.with_name(f".tmp-{nacl.utils.random(8).hex()}-{path.name}")


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary name, fsync, rename: readers see the old file or the new one."""
    tmp = temp_name(path)
    try:
        with tmp.open("xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def clean_temps(folder: Path) -> int:
    """Delete temporary files an interrupted write left; return how many."""
    count = 0
    for tmp in folder.glob(".tmp-*"):
        tmp.unlink()
        count += 1
    return count
