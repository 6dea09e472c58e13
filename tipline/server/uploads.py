"""Resumable uploads of envelopes sealed in the browser.

The header comes first, in the request that creates the upload, and is checked with
``tipline.crypto.format.parse_header``: known active key ids, a plausible size. The server writes
it as the first bytes of the partial file; the browser then sends the rest in chunks at explicit
offsets. The partial file's length is the acknowledged offset, read under a lock, so two
requests for one upload cannot interleave and a dropped connection resumes exactly where the
last acknowledged chunk ended.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import ClientDisconnected

from ..crypto import format as fmt
from ..crypto.errors import EnvelopeFormatError, TiplineError
from ..crypto.inner import MAX_PLAINTEXT
from ..crypto.padding import MIN_PLAINTEXT, padded_length
from . import db, faults
from .blobs import BlobStore, Store, blur, hour_start
from .keyset import Current
from .models import Source, Submission, Upload, new_id, this_hour
from .sources import blobs, find_by_token_hash, new_source

if TYPE_CHECKING:
    from .s3store import S3BlobStore


class UploadError(TiplineError):
    """the upload was refused"""


class StaleKeysError(UploadError):
    """this page was loaded before the newsroom changed its keys. Reload the page and send
    your tip again; nothing was stored"""


class WrongOffsetError(UploadError):
    """that part of the upload does not follow the part the server has"""


class _StoredMeanwhileError(Exception):
    """Another finish of the same upload stored it while this one ran."""


class CodenameTakenError(UploadError):
    """that codename is taken; make a new one"""


@dataclass(frozen=True)
class NewSource:
    """The derivations a first-time source's page sends with its first upload."""

    token_hash: bytes
    reply_public_key: bytes


def plausible_size(size: int, stanzas: int) -> bool:
    """Whether ``size`` is exactly the size of some envelope v1 with this many stanzas: a
    Padmé-padded plaintext of at least ``MIN_PLAINTEXT`` bytes, cut into chunks of 64 KiB.
    """
    payload = size - fmt.header_size(stanzas)
    if payload <= 0:
        return False
    chunks = -(-payload // (fmt.CHUNK_SIZE + fmt.ABYTES))
    plaintext = payload - chunks * fmt.ABYTES
    return (
        MIN_PLAINTEXT <= plaintext <= MAX_PLAINTEXT
        and padded_length(plaintext) == plaintext
        and fmt.ciphertext_size(plaintext, stanzas) == size
    )


def max_envelope_size(max_submission: int) -> int:
    """The largest envelope a source may upload for ``max_submission`` bytes of content."""
    return fmt.ciphertext_size(padded_length(max_submission), fmt.MAX_STANZAS)


def check_header(header: bytes, size: int, keys: Current, max_size: int) -> fmt.Header:
    """Refuse a header that is malformed, not sealed to exactly the active keys, or a size that
    no envelope has or that is over the limit.
    """
    if len(header) > fmt.MAX_HEADER_SIZE:
        raise UploadError("the envelope header is too long")
    try:
        parsed = fmt.parse_header(header)
    except EnvelopeFormatError as exc:
        raise UploadError(f"the envelope is malformed: {exc.detail}") from exc
    if len(header) != fmt.header_size(len(parsed.stanzas)):
        raise UploadError("the envelope header has trailing bytes")
    if set(parsed.key_ids) != keys.manifest.key_ids():
        raise StaleKeysError()
    if size > max_size:
        raise UploadError("the submission is larger than this tip line accepts")
    if not plausible_size(size, len(parsed.stanzas)):
        raise UploadError("the announced size is not the size of an envelope")
    return parsed


def idle_uploads(
    session: Session, store: Store, hours: int, hour: datetime.datetime | None = None
) -> list[str]:
    """Unfinished uploads idle for more than ``hours`` as of ``hour`` (this hour by default):
    started before then and no chunk since. Last activity is the partial file's mtime, which
    each chunk sets to its hour (never finer, like the rows); a row whose file is gone is idle,
    unless a finish that died before its commit left the file in the store (the sweeper gives
    that back).
    """
    cutoff = (hour or this_hour()) - datetime.timedelta(hours=hours)
    limit = cutoff.replace(tzinfo=datetime.UTC).timestamp()
    candidates = session.scalars(select(Upload.id).where(Upload.created < cutoff)).all()
    idle = []
    for upload_id in candidates:
        if not isinstance(store, BlobStore):  # S3: the latest chunk's time, never finer
            last = store.upload_last_activity(upload_id)
            if (last is not None and last >= limit) or (
                last is None and store.exists("submissions", upload_id)
            ):
                continue
            idle.append(upload_id)
            continue
        try:
            if store.upload_path(upload_id).stat().st_mtime >= limit:
                continue
        except FileNotFoundError:
            if store.exists("submissions", upload_id):
                continue
        idle.append(upload_id)
    return idle


def expire_old(store: Store, hours: int, session: Session | None = None) -> int:
    """Drop unfinished uploads idle for more than ``hours`` (``idle_uploads``); rows go first
    (committed), then files. Returns how many went.
    """
    session = session or db.session()
    stale = idle_uploads(session, store, hours)
    if not stale:
        return 0
    session.execute(delete(Upload).where(Upload.id.in_(stale)))
    session.commit()
    for upload_id in stale:
        discard(store, upload_id)
    store.blur_folders()
    return len(stale)


def discard(store: Store, upload_id: str) -> None:
    """Remove an upload's bytes (its partial file, or its multipart upload in the bucket)."""
    if isinstance(store, BlobStore):
        with contextlib.suppress(FileNotFoundError):
            store.upload_path(upload_id).unlink()
    else:
        store.upload_discard(upload_id)


def create(source: Source | NewSource, header: bytes, size: int, keys: Current) -> Upload:
    """Start an upload whose envelope begins with ``header``, for a stored source or for a
    first-time one (stored only when the upload finishes).
    """
    store = blobs()
    store.check_space(size)
    upload = Upload(id=new_id(), size=size, manifest_version=keys.version)
    if isinstance(source, Source):
        upload.source_id = source.id
    else:
        if find_by_token_hash(source.token_hash) is not None:
            raise CodenameTakenError()
        upload.token_hash = source.token_hash
        upload.reply_public_key = source.reply_public_key
    if not isinstance(store, BlobStore):
        return _create_s3(store, upload, header)
    path = store.upload_path(upload.id)
    with path.open("xb") as out:
        out.write(header)
        out.flush()
        os.fsync(out.fileno())
        blur(out.fileno(), hour_start())
    store.blur_folders()
    faults.point("upload-created")  # a kill here leaves a partial file with no row: swept
    try:
        db.session().add(upload)
        db.session().commit()
    except BaseException:
        db.session().rollback()
        path.unlink()
        raise
    return upload


def _create_s3(store: S3BlobStore, upload: Upload, header: bytes) -> Upload:
    """``create`` on S3: the multipart upload begun and the header stored before the row is
    committed (what has no row is removed by ``discard`` here, or by the sweep)."""
    store.upload_start(upload.id, header)
    try:
        db.session().add(upload)
        db.session().commit()
    except BaseException:
        db.session().rollback()
        with contextlib.suppress(TiplineError):
            store.upload_discard(upload.id)
        raise
    return upload


@contextlib.contextmanager
def locked(path: Path) -> Iterator[BinaryIO]:
    """The partial file, open for appending and exclusively locked."""
    try:
        handle = path.open("r+b")
    except FileNotFoundError as exc:
        raise UploadError("this upload no longer exists; start again") from exc
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield handle


def received(upload: Upload) -> int:
    """How many bytes the server has acknowledged."""
    store = blobs()
    if not isinstance(store, BlobStore):
        have = store.upload_received(upload.id)
        if have is None:
            raise UploadError("this upload no longer exists; start again")
        return have
    with locked(store.upload_path(upload.id)) as handle:
        return os.fstat(handle.fileno()).st_size


def append(upload: Upload, offset: int, length: int, body: BinaryIO) -> int:
    """Append ``length`` bytes from ``body`` at ``offset``; durable before it is acknowledged.

    A body that ends early (the circuit dropped) is cut off again, so the next attempt starts
    from the last acknowledged byte.
    """
    store = blobs()
    if not isinstance(store, BlobStore):
        return _append_s3(store, upload, offset, length, body)
    with locked(store.upload_path(upload.id)) as handle:
        have = os.fstat(handle.fileno()).st_size
        if offset != have:
            raise WrongOffsetError()
        if have + length > upload.size:
            raise UploadError("that is more than the announced size")
        store.check_space(length)
        handle.seek(have)
        try:
            _copy_exactly(body, handle, length)
            handle.flush()
            # Last activity, for expiry: the hour, not the moment.
            blur(handle.fileno(), hour_start())
            os.fsync(handle.fileno())
        except BaseException:
            handle.truncate(have)
            raise
        return have + length


def _copy_exactly(body: BinaryIO, out: BinaryIO, length: int) -> None:
    """Copy ``length`` bytes of the request body to ``out`` in 64 KiB reads; a body that ends
    sooner is a client that went away."""
    remaining = length
    while remaining:
        piece = body.read(min(remaining, 1 << 16))
        if not piece:
            raise ClientDisconnected()
        out.write(piece)
        remaining -= len(piece)


def _append_s3(store: S3BlobStore, upload: Upload, offset: int, length: int, body: BinaryIO) -> int:
    """``append`` on S3: the chunk is one part of the upload's multipart upload, sent once it
    has arrived whole (spooled to a local file, not held in memory). The offset is checked
    against what ListParts shows, which every app server sees, so the next chunk may go to
    any of them. Every chunk but the last is the upload's part size (the page's chunk size)."""
    state = store.upload_state(upload.id)
    have = None if state is None else store.received(state)
    if state is None or have is None:
        raise UploadError("this upload no longer exists; start again")
    if offset != have:
        raise WrongOffsetError()
    if have + length > upload.size:
        raise UploadError("that is more than the announced size")
    if length != state.part_size and have + length != upload.size:
        raise UploadError(f"each part of this upload but the last is {state.part_size} bytes")

    try:
        store.upload_part(state, offset, length, lambda out: _copy_exactly(body, out, length))
    except FileNotFoundError:
        raise UploadError("this upload no longer exists; start again") from None
    return have + length


@dataclass(frozen=True)
class Finished:
    """A stored submission, its source, and whether an earlier request had stored it."""

    source: Source
    submission: Submission
    already: bool = False


def finish(upload: Upload, keys: Current | None) -> Finished:
    """Turn a complete upload into a stored submission (its id is the upload's): keys checked
    again, file moved into the blob store, row committed (with the source, for a first-time
    source) in the same transaction that forgets the upload.

    Idempotent: a second finish, at the same time or after a lost answer, finds the submission
    and says so. A refused commit moves the file back, so the upload is whole and can be
    finished again; a kill between the move and the commit is undone the same way.
    """
    store = blobs()
    if not isinstance(store, BlobStore):
        return _finish_s3(store, upload, keys)
    path = store.upload_path(upload.id)
    upload_id = upload.id
    restore_interrupted(store, upload_id)
    try:
        handle = path.open("r+b")
    except FileNotFoundError:
        return _already_finished(upload_id)
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        if not _still_at(path, handle):  # another request finished (or cancelled) it
            return _already_finished(upload_id)
        if os.fstat(handle.fileno()).st_size != upload.size:
            raise UploadError("the upload is not complete yet")
        _refuse_stale_keys(upload, handle.read(fmt.MAX_HEADER_SIZE), keys)
        source = _source_of(upload)
        os.fsync(handle.fileno())
        store.adopt("submissions", upload_id, path)
        faults.point("finish-moved")
        session = db.session()
        try:
            row = _commit_submission(upload, source)
        except BaseException:
            session.rollback()
            store.give_back("submissions", upload_id, path)
            raise
    return Finished(source, row)


def _finish_s3(store: S3BlobStore, upload: Upload, keys: Current | None) -> Finished:
    """``finish`` on S3: complete the multipart upload into ``pending/submissions/<id>`` (the
    service joins the parts; nothing is read back), commit the rows, then remove the header
    object. A refused commit or a kill after the completion leaves the object and the upload
    row: the next finish, on any server, sees the object whole and commits it; an object whose
    upload is dropped has no row and the sweep removes it."""
    upload_id = upload.id
    # The header object is read once: what it says and its bytes. No lock spans servers:
    # another finish may complete, commit and forget the upload (its header object too) at
    # any point after this read, which the steps below meet as a completed object (received,
    # compose), as the source it made (_source_of) or as a refused commit.
    opened = store.upload_opened(upload_id, fmt.MAX_HEADER_SIZE)
    if opened is None:
        return _already_finished(upload_id)
    state, header = opened
    have = store.received(state)
    if have is None:
        return _already_finished(upload_id)
    if have != upload.size:
        raise UploadError("the upload is not complete yet")
    try:
        _refuse_stale_keys(upload, header, keys)
        source = _source_of(upload)
    except _StoredMeanwhileError:
        return _already_finished(upload_id)
    try:
        store.upload_compose(state, upload.size)
    except FileNotFoundError:
        return _already_finished(upload_id)
    faults.point("finish-moved")
    session = db.session()
    try:
        row = _commit_submission(upload, source)
    except Exception:
        session.rollback()
        if session.get(Submission, upload_id) is not None:  # another request's finish won
            return _already_finished(upload_id)
        raise
    with contextlib.suppress(TiplineError):
        store.upload_forget(upload_id)  # left over if the store fails now: no row, swept
    return Finished(source, row)


def _refuse_stale_keys(upload: Upload, header: bytes, keys: Current | None) -> None:
    """Cancel the upload (``StaleKeysError``) unless its envelope is sealed to exactly the keys
    of the manifest in force: the keys may have changed while it was sent."""
    if keys is None or set(fmt.parse_header(header).key_ids) != keys.manifest.key_ids():
        cancel(upload)
        raise StaleKeysError()


def _commit_submission(upload: Upload, source: Source) -> Submission:
    """In one transaction: the submission row (the upload's id), its source marked as having
    sent something, the upload forgotten. The caller undoes its blob if this raises."""
    row = Submission(id=upload.id, source_id=source.id, size=upload.size)
    source.submitted = True
    session = db.session()
    session.add(source)
    session.add(row)
    session.delete(upload)
    session.commit()
    return row


def _still_at(path: Path, handle: BinaryIO) -> bool:
    """Whether the locked file is still the one at ``path`` (not moved away meanwhile)."""
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False


def _already_finished(upload_id: str) -> Finished:
    """The submission an earlier finish of this upload stored, or ``UploadError``."""
    session = db.session()
    session.rollback()  # read what other requests committed meanwhile
    row = session.get(Submission, upload_id)
    source = session.get(Source, row.source_id) if row is not None else None
    if row is None or source is None:
        raise UploadError("this upload no longer exists; start again")
    return Finished(source, row, already=True)


def restore_interrupted(store: Store, upload_id: str) -> bool:
    """If a finish moved this upload's file into the blob store and died before its commit
    (no submission row), move the file back; True if it did. A finish still at work holds
    the file's lock, and this waits for it.
    """
    if not isinstance(store, BlobStore):
        return False  # S3: the next finish commits a completed object; nothing to give back
    pending = store.pending_path("submissions", upload_id)
    try:
        handle = pending.open("rb")
    except FileNotFoundError:
        return False
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        session = db.session()
        session.rollback()
        if session.get(Submission, upload_id) is not None:
            return False
        if session.get(Upload, upload_id) is None:
            return False  # no upload to give it back to: an orphan for the sweeper
        return store.give_back("submissions", upload_id, store.upload_path(upload_id))


def _source_of(upload: Upload) -> Source:
    """The upload's source: the stored one, or a new one made from what the page sent."""
    if upload.source_id is not None:
        found = db.session().get(Source, upload.source_id)
        if found is None:
            raise UploadError("this upload no longer exists; start again")
        return found
    if upload.token_hash is None or upload.reply_public_key is None:
        raise UploadError("this upload no longer exists; start again")
    if find_by_token_hash(upload.token_hash) is not None:
        # The source may be this upload's own, made by another finish of it that committed
        # meanwhile (finishes at once on two servers, S3); that commit stored the submission
        # too, so it is seen here with the source: it is not someone else's codename.
        if db.session().get(Submission, upload.id) is not None:
            raise _StoredMeanwhileError()
        cancel(upload)
        raise CodenameTakenError()
    return new_source(upload.token_hash, upload.reply_public_key)


def cancel(upload: Upload) -> None:
    """Forget an upload (committed), then its bytes (a kill between leaves a partial file
    with no row, which the sweeper removes).
    """
    upload_id = upload.id
    db.session().delete(upload)
    db.session().commit()
    discard(blobs(), upload_id)
    blobs().blur_folders()
