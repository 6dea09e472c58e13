"""What leaves the vault as a reply: reply bundles (attachments leave by safe/export.py)."""

from __future__ import annotations

import contextlib
import mimetypes
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import nacl.hashlib
import nacl.utils

from ..bundle import KIND_REPLY, ReplyItem, write_bundle
from ..crypto import envelope
from ..crypto.inner import MAX_ATTACHMENTS, Attachment, Inner
from . import sealed
from .errors import UsageError
from .vault import Vault, today

MAX_REPLY_ATTACHMENT = 1 << 30


@dataclass(frozen=True)
class Reply:
    """A reply written on the desk: its id, source, and the bundle it went into."""

    id: str
    source_id: str
    designation: str
    bundle: Path


def write_reply(
    vault: Vault, source: str, message: str, attachments: list[Path], out: Path
) -> Reply:
    """Seal a reply to the source's reply key and the journalists' active keys, keep a copy in
    the vault (the thread shows it), and write it as a reply bundle to ``out``.
    """
    source_id, designation, reply_pk = vault.store.resolve_source(source)
    if reply_pk is None:
        raise UsageError(f"no reply key is known for {designation}")
    if not message.strip() and not attachments:
        raise UsageError("the reply is empty")
    if len(attachments) > MAX_ATTACHMENTS:
        raise UsageError(f"a reply carries at most {MAX_ATTACHMENTS} attachments")
    active = [r.public.public_key for r in vault.keyring.active()]
    if not active:
        raise UsageError("this vault has no active key to keep a copy of the reply")
    if out.exists():
        raise UsageError(f"{out} already exists")
    files, sources = [], []
    try:
        for path in attachments:
            handle = path.open("rb")
            sources.append(handle)
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_REPLY_ATTACHMENT:
                raise UsageError(f"{path.name} is larger than 1 GiB")
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            files.append(Attachment(path.name[:255] or "attachment", size, kind))
        inner = Inner("reply", "desk", message, None, tuple(files))
        reply_id = nacl.utils.random(16).hex()
        final = vault.item_file(reply_id)
        recipients = [reply_pk, *[pk for pk in active if pk != reply_pk]]
        size, digest = replace_hashed(
            final, lambda dst: envelope.seal(dst, recipients, inner, sources)
        )
    except ValueError as exc:  # an attachment changed size while it was read
        raise UsageError(str(exc)) from exc
    finally:
        for handle in sources:
            handle.close()
    vault.store.add_item(
        item_id=reply_id,
        source_id=source_id,
        designation=designation,
        reply_public_key=None,
        direction="out",
        received=today().isoformat(),
        imported=today().isoformat(),
        size=size,
        digest=digest,
        sealed_by="desk",
        message=message,
        attachments=[(a.name, a.size, a.type) for a in files],
    )
    vault.save_store()
    item = ReplyItem(reply_id, source_id, size)
    tmp_out = sealed.temp_name(out)
    try:
        with tmp_out.open("xb") as dst:
            write_bundle(dst, KIND_REPLY, [item], lambda _: final.open("rb"))
            dst.flush()
            os.fsync(dst.fileno())
        tmp_out.replace(out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_out.unlink()
    return Reply(reply_id, source_id, designation, out)


def replace_hashed(path: Path, write: Callable[[BinaryIO], object]) -> tuple[int, bytes]:
    """Write a new file through ``write`` under a temporary name beside ``path``, fsync it,
    hash it, then rename it over ``path``; return its size and BLAKE2b-256. After a failure
    ``path`` is as it was and the temporary file is gone.
    """
    tmp = sealed.temp_name(path)
    try:
        with tmp.open("xb") as dst:
            write(dst)
            dst.flush()
            os.fsync(dst.fileno())
        size, digest = file_digest(tmp)
        tmp.replace(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return size, digest


def file_digest(path: Path) -> tuple[int, bytes]:
    """Size and BLAKE2b-256 of a file, read in 1 MiB pieces."""
    digest = nacl.hashlib.blake2b(digest_size=32)
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.digest()
