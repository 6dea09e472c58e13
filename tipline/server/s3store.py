"""The blob store on any S3-compatible service (SeaweedFS, Garage, Ceph RGW, ...), via boto3.

Chosen by ``BLOB_STORE = "s3"`` (docs/ADMIN.md); the local folder (``blobs.BlobStore``) stays the
default. Same methods for blobs (write, open, delete, exists, ids, publish), so the rest of the
server does not care which it has; resumable uploads use the ``upload_*`` methods below.

Layout in the bucket (docs/SPEC.md §7.1):
- ``pending/<kind>/<id>``: a new blob, until the hourly publication copies it to ``<kind>/<id>``
  (an object's LastModified is exact; a published copy's says only when a publication ran);
- ``uploads/<id>/header``: a resumable upload's envelope header, with the id of the multipart
  upload begun at the upload's start (its target is ``pending/submissions/<id>``) and its part
  size. Each chunk goes straight into that multipart upload as one part, its number derived
  from its offset (part 1 is the header and the first chunk; every chunk but the last is one
  part size, at least the 5 MiB S3 services ask of every part but the last), so chunks may land
  on different app servers: what was acknowledged is what ListParts shows, which every server
  sees alike. ``finish`` reads the header object once (``upload_opened``), completes the
  multipart upload (nothing is read back) and, after the row is committed, removes the header
  object; a cancel, an expiry or the sweep aborts it.

Local disk is still used for spool files (``tmp``, sealing on the no-JS path): ``root`` is that
local folder and ``check_space`` guards it. Keys and secrets are never logged nor put in errors.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .blobs import KINDS, LowDiskSpaceError, StoreUnavailableError, hour_start
from .s3model import DATA as S3_DATA

log = logging.getLogger(__name__)
_ID = re.compile(r"\A[0-9a-f]{32}\Z")
_PIECE = 64 << 10
MIN_PART = 5 << 20  # the smallest part S3 services take (but the last): a chunk's floor
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}


def _client(endpoint: str, access_key: str, secret_key: str, region: str) -> Any:
    """A botocore S3 client that parses only the operations the store calls (s3model.py)."""
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(S3_DATA))
    return session.create_client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _MISSING


@contextlib.contextmanager
def _unavailable() -> Iterator[None]:
    """Turn the service's failures (down, refusing, erroring) into ``StoreUnavailableError``
    (a 503 for the source: nothing acknowledged is lost). "Not found" passes through."""
    try:
        yield
    except ClientError as exc:
        if _missing(exc):
            raise FileNotFoundError("no such blob") from None
        # The service's error code only (AccessDenied, SignatureDoesNotMatch, SlowDown...):
        # never the request, whose URL names a blob or an upload.
        log.warning("the S3 store refused: %s", exc.response.get("Error", {}).get("Code"))
        raise StoreUnavailableError() from None
    except BotoCoreError as exc:
        log.warning("the S3 store does not answer: %s", type(exc).__name__)
        raise StoreUnavailableError() from None


class _Pieces:
    """A file read in pieces of at most 64 KiB whatever size is asked (botocore hashes a body
    in 1 MiB reads): small buffers come from malloc's free lists, where megabyte ones raise its
    mmap threshold and then stay in the arena of each thread that made one (worker RSS)."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file

    def read(self, size: int = -1) -> bytes:
        return self._file.read(_PIECE if size is None or size < 0 else min(size, _PIECE))

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()


@dataclass(frozen=True)
class UploadState:
    """What ``uploads/<id>/header`` says about a resumable upload."""

    upload_id: str
    header_size: int
    multipart: str  # the multipart upload's id in the service
    part_size: int  # every chunk but the last, in bytes (part 1 has the header too)
    started: float  # the header object's time


class S3BlobStore:
    """Envelopes in one bucket (see the module's docstring)."""

    def __init__(
        self,
        root: Path,
        min_free: int,
        *,
        endpoint: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        region: str = "us-east-1",
        part_size: int = 8 << 20,
        client: Any = None,
    ) -> None:
        if part_size < MIN_PART:
            raise ValueError("a part is at least 5 MiB")
        self.part_size = part_size  # the chunk size of uploads started here (MAX_CHUNK_SIZE)
        self.root, self.min_free, self.bucket = root, min_free, bucket
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.s3 = client or _client(endpoint, access_key, secret_key, region)
        self._published_hour = 0.0
        self._publishing = threading.Lock()
        self._publisher_pid = 0

    # -- blobs -----------------------------------------------------------------------------

    def _check(self, kind: str, blob_id: str) -> None:
        if kind not in KINDS or not _ID.match(blob_id):
            raise ValueError("not a blob id")

    def published_key(self, kind: str, blob_id: str) -> str:
        self._check(kind, blob_id)
        return f"{kind}/{blob_id}"

    def pending_key(self, kind: str, blob_id: str) -> str:
        self._check(kind, blob_id)
        return f"pending/{kind}/{blob_id}"

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            with _unavailable():
                return cast(dict[str, Any], self.s3.head_object(Bucket=self.bucket, Key=key))
        except FileNotFoundError:
            return None

    def exists(self, kind: str, blob_id: str) -> bool:
        """Whether the blob is stored, pending or published."""
        return (
            self._head(self.pending_key(kind, blob_id)) is not None
            or self._head(self.published_key(kind, blob_id)) is not None
        )

    def check_space(self, incoming: int) -> None:
        """The bucket has no floor we can see; the local spool folder does."""
        import shutil

        if shutil.disk_usage(self.root).free - incoming < self.min_free:
            raise LowDiskSpaceError()

    def sweep(self, age: float = 6 * 3600, now: float | None = None) -> None:
        """Remove local spool files a crash left behind."""
        cutoff = (time.time() if now is None else now) - age
        for leftover in self.tmp.glob(".blob-*"):
            with contextlib.suppress(FileNotFoundError):
                st = leftover.stat()
                if max(st.st_mtime, st.st_ctime) < cutoff:
                    leftover.unlink()

    def blur_folders(self) -> None:
        """Nothing to blur: objects' times are handled by publication (module docstring)."""

    def write(self, kind: str, blob_id: str, fill: Callable[[BinaryIO], object]) -> int:
        """Create a blob from what ``fill`` writes (spooled locally, then stored whole);
        returns its size once the service has acknowledged it."""
        key = self.pending_key(kind, blob_id)
        self.publish_hourly()
        if self.exists(kind, blob_id):
            raise FileExistsError(blob_id)
        with tempfile.TemporaryFile(dir=self.tmp, prefix=".blob-") as spool:
            fill(cast(BinaryIO, spool))
            size = spool.tell()
            spool.seek(0)
            with _unavailable():
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=spool, ContentLength=size)
        return size

    def open(self, kind: str, blob_id: str) -> BinaryIO:
        """A blob's bytes as a stream, wherever it is (a publication may move it meanwhile)."""
        for key in (
            self.published_key(kind, blob_id),
            self.pending_key(kind, blob_id),
            self.published_key(kind, blob_id),
        ):
            with contextlib.suppress(FileNotFoundError), _unavailable():
                return cast(BinaryIO, self.s3.get_object(Bucket=self.bucket, Key=key)["Body"])
        raise FileNotFoundError(f"no {kind[:-1]} with that id")

    def delete(self, kind: str, blob_id: str) -> None:
        """Remove a blob (missing is fine)."""
        for key in (self.pending_key(kind, blob_id), self.published_key(kind, blob_id)):
            with _unavailable():
                self.s3.delete_object(Bucket=self.bucket, Key=key)

    def _list(self, prefix: str) -> Iterator[dict[str, Any]]:
        with _unavailable():
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                yield from page.get("Contents", [])

    def ids(self, kind: str) -> Iterator[tuple[str, float]]:
        """Every stored blob of a kind: its id and the time of its object."""
        for prefix in (f"pending/{kind}/", f"{kind}/"):
            for entry in list(self._list(prefix)):
                name = entry["Key"][len(prefix) :]
                if _ID.match(name):
                    yield name, entry["LastModified"].timestamp()

    def publish(self, now: float | None = None) -> int:
        """Copy every pending blob that arrived before the current hour to its published key
        and remove the pending one; returns how many. The copy's LastModified is this run's.
        Every app server runs this: a blob another one moved since the listing is skipped."""
        cutoff = hour_start(now)
        moved = 0
        for kind in KINDS:
            for entry in list(self._list(f"pending/{kind}/")):
                name = entry["Key"].rsplit("/", 1)[-1]
                if not _ID.match(name) or entry["LastModified"].timestamp() >= cutoff:
                    continue
                try:
                    with _unavailable():
                        self.s3.copy_object(
                            Bucket=self.bucket,
                            Key=f"{kind}/{name}",
                            CopySource={"Bucket": self.bucket, "Key": entry["Key"]},
                        )
                        self.s3.delete_object(Bucket=self.bucket, Key=entry["Key"])
                except FileNotFoundError:
                    continue  # another app server published (or a request deleted) it meanwhile
                moved += 1
        return moved

    def publish_hourly(self) -> None:
        """Publish once per hour per process, on the first write of the hour."""
        hour = hour_start()
        if self._published_hour >= hour or not self._publishing.acquire(blocking=False):
            return
        try:
            self.publish()
            self._published_hour = hour
        except StoreUnavailableError:
            pass  # the next write (or the worker's timer) tries again
        finally:
            self._publishing.release()

    def start_hourly_publisher(self) -> None:
        """Publish a few seconds after every hour begins, from a thread of this process."""
        if self._publisher_pid == os.getpid():
            return
        self._publisher_pid = os.getpid()
        threading.Thread(target=self._publish_every_hour, name="publisher", daemon=True).start()

    def _publish_every_hour(self) -> None:
        while True:
            time.sleep(hour_start() + 3600 + 5 - time.time())
            with contextlib.suppress(StoreUnavailableError):
                self.publish()

    # -- resumable uploads -----------------------------------------------------------------

    def _upload_prefix(self, upload_id: str) -> str:
        if not _ID.match(upload_id):
            raise ValueError("not an upload id")
        return f"uploads/{upload_id}/"

    def upload_start(self, upload_id: str, header: bytes) -> None:
        """Begin the multipart upload of ``pending/submissions/<id>`` and store the envelope's
        header as ``uploads/<id>/header``, which names the multipart upload and its part size
        (what every app server needs to place a chunk). A multipart upload begun by a request
        that died before its header object was stored is aborted by the sweep."""
        target = self.pending_key("submissions", upload_id)
        with _unavailable():
            multipart = self.s3.create_multipart_upload(Bucket=self.bucket, Key=target)["UploadId"]
        try:
            with _unavailable():
                self.s3.put_object(
                    Bucket=self.bucket,
                    Key=f"{self._upload_prefix(upload_id)}header",
                    Body=header,
                    Metadata={"multipart": multipart, "part-size": str(self.part_size)},
                )
        except BaseException:
            with contextlib.suppress(ClientError, BotoCoreError):
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=target, UploadId=multipart)
            raise

    def upload_state(self, upload_id: str) -> UploadState | None:
        """The upload's header object as the app needs it, or None if it has none."""
        found = self._head(f"{self._upload_prefix(upload_id)}header")
        return None if found is None else self._state(upload_id, found)

    def upload_opened(self, upload_id: str, size: int) -> tuple[UploadState, bytes] | None:
        """``upload_state`` and ``upload_head`` from one GET of the header object (what a
        finish needs), or None if it has none."""
        try:
            found, head = self._header_object(upload_id, size)
        except FileNotFoundError:
            return None
        state = self._state(upload_id, found)
        return None if state is None else (state, head)

    def _state(self, upload_id: str, found: dict[str, Any]) -> UploadState | None:
        """An ``UploadState`` from the header object's HEAD or GET answer."""
        meta = found.get("Metadata", {})
        multipart, part_size = meta.get("multipart", ""), meta.get("part-size", "")
        if not multipart or not part_size.isdigit() or int(part_size) < MIN_PART:
            return None  # not one this code made: treated as gone (the sweep removes it)
        return UploadState(
            upload_id,
            int(found["ContentLength"]),
            multipart,
            int(part_size),
            found["LastModified"].timestamp(),
        )

    def _parts(self, state: UploadState) -> list[tuple[int, int, str, float]] | None:
        """The contiguous run of stored parts from part 1: (number, size, ETag, time); None if
        the multipart upload is no longer open (completed by a finish, or aborted)."""
        found: dict[int, tuple[int, str, float]] = {}
        marker = 0
        while True:
            try:
                with _unavailable():
                    page = self.s3.list_parts(
                        Bucket=self.bucket,
                        Key=self.pending_key("submissions", state.upload_id),
                        UploadId=state.multipart,
                        PartNumberMarker=marker,
                    )
            except FileNotFoundError:
                return None
            for part in page.get("Parts", []):
                found[int(part["PartNumber"])] = (
                    int(part["Size"]),
                    str(part["ETag"]),
                    part["LastModified"].timestamp(),
                )
            if not page.get("IsTruncated"):
                break
            marker = int(page["NextPartNumberMarker"])
        run, number = [], 1
        while number in found:
            run.append((number, *found[number]))
            number += 1
        return run

    def received(self, state: UploadState) -> int | None:
        """``upload_received`` for an upload whose header object was read already."""
        parts = self._parts(state)
        if parts is None:  # a finish completed it and has not committed yet: the object
            done = self._head(self.pending_key("submissions", state.upload_id))
            return None if done is None else int(done["ContentLength"])
        return max(state.header_size, sum(size for _, size, _, _ in parts))

    def upload_received(self, upload_id: str) -> int | None:
        """How many bytes are acknowledged (part 1 holds the header), or None if nothing is
        stored for this upload."""
        state = self.upload_state(upload_id)
        return None if state is None else self.received(state)

    def upload_last_activity(self, upload_id: str) -> float | None:
        """When the upload's latest part (or its header, or its completed object) arrived."""
        state = self.upload_state(upload_id)
        if state is None:
            return None
        parts = self._parts(state)
        times = [state.started, *(when for *_, when in parts or [])]
        if parts is None and (done := self._head(self.pending_key("submissions", upload_id))):
            times.append(done["LastModified"].timestamp())
        return max(times)

    def part_number(self, state: UploadState, offset: int) -> int:
        """The part a chunk at ``offset`` is: part 1 is the header and the first chunk, and
        each chunk after it is exactly one part size long (the caller checks lengths)."""
        payload = offset - state.header_size
        if payload < 0 or payload % state.part_size:
            raise ValueError("not a part's offset")
        return payload // state.part_size + 1

    def upload_part(
        self, state: UploadState, offset: int, length: int, fill: Callable[[BinaryIO], None]
    ) -> None:
        """Store the chunk of ``length`` bytes at ``offset`` as its part, straight into the
        multipart upload. ``fill`` copies the chunk (the request body, read once) into a local
        spool file, which is then sent (SigV4 over http hashes the body before sending it, so
        it cannot go on as it comes in); part 1 gets the header first. The spool is a file, not
        memory: a worker's RSS does not grow with the chunk size. Sending a part again (a retry
        whose answer was lost, on any server) replaces it with the same bytes."""
        number = self.part_number(state, offset)
        prefix = self.upload_head(state.upload_id, state.header_size) if number == 1 else b""
        self.check_space(length)
        with tempfile.TemporaryFile(dir=self.tmp, prefix=".blob-") as spool:
            spool.write(prefix)
            fill(cast(BinaryIO, spool))
            if spool.tell() != len(prefix) + length:
                raise ValueError("the chunk is not the length announced")
            spool.seek(0)
            try:
                with _unavailable():
                    self.s3.upload_part(
                        Bucket=self.bucket,
                        Key=self.pending_key("submissions", state.upload_id),
                        UploadId=state.multipart,
                        PartNumber=number,
                        Body=_Pieces(cast(BinaryIO, spool)),
                        ContentLength=len(prefix) + length,
                    )
            except FileNotFoundError:
                raise FileNotFoundError("this upload no longer exists") from None

    def upload_head(self, upload_id: str, size: int) -> bytes:
        """The first ``size`` bytes of the upload (at most its header, stored on its own)."""
        return self._header_object(upload_id, size)[1]

    def _header_object(self, upload_id: str, size: int) -> tuple[dict[str, Any], bytes]:
        """The GET answer for the upload's header object and its first ``size`` bytes
        (``FileNotFoundError`` if there is none)."""
        with _unavailable():
            found = self.s3.get_object(
                Bucket=self.bucket, Key=f"{self._upload_prefix(upload_id)}header"
            )
            with found["Body"] as body:
                return found, cast(bytes, body.read(size))

    def upload_compose(self, state: UploadState, size: int) -> None:  # "complete", in S3's words
        """Complete the multipart upload: its parts become ``pending/submissions/<id>`` in the
        service, nothing read back. Done already (another finish, or one that died before its
        commit) is fine; a run of parts that is not ``size`` bytes, or a multipart upload that
        was aborted (a cancel since ``state`` was read), is ``FileNotFoundError``."""
        target = self.pending_key("submissions", state.upload_id)
        parts = self._parts(state)
        if parts is None:
            done = self._head(target)
            if done is None or int(done["ContentLength"]) != size:
                raise FileNotFoundError("this upload no longer exists")
            return
        if sum(part_size for _, part_size, _, _ in parts) != size:
            raise FileNotFoundError("the upload is not complete")
        try:
            with _unavailable():
                self.s3.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=target,
                    UploadId=state.multipart,
                    MultipartUpload={
                        "Parts": [{"PartNumber": n, "ETag": etag} for n, _, etag, _ in parts]
                    },
                )
        except FileNotFoundError:  # another finish completed it meanwhile
            done = self._head(target)
            if done is None or int(done["ContentLength"]) != size:
                raise

    def upload_forget(self, upload_id: str) -> None:
        """After a finish's commit: remove the header object (its multipart upload is complete,
        so it is all that is left; a failure here leaves it for the sweep)."""
        with _unavailable():
            self.s3.delete_object(Bucket=self.bucket, Key=f"{self._upload_prefix(upload_id)}header")

    def upload_discard(self, upload_id: str) -> None:
        """Abort the upload's multipart uploads and remove its objects under ``uploads/<id>/``
        (missing is fine). A completed object is a blob: the sweep removes it if no row has
        it."""
        target = self.pending_key("submissions", upload_id)
        with _unavailable():
            listing = self.s3.list_multipart_uploads(Bucket=self.bucket, Prefix=target)
        for entry in listing.get("Uploads", []):
            if entry.get("Key") == target:
                with contextlib.suppress(FileNotFoundError), _unavailable():
                    self.s3.abort_multipart_upload(
                        Bucket=self.bucket, Key=target, UploadId=entry["UploadId"]
                    )
        keys = [entry["Key"] for entry in self._list(self._upload_prefix(upload_id))]
        for start in range(0, len(keys), 1000):
            with _unavailable():
                self.s3.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]]},
                )

    def upload_ids(self) -> Iterator[tuple[str, float]]:
        """Every upload with something stored: its id and when it began (its header object's
        time, or its multipart upload's if the header never got stored)."""
        begun: dict[str, float] = {}
        for entry in self._list("uploads/"):
            parts = entry["Key"].split("/")
            if len(parts) == 3 and _ID.match(parts[1]):
                when = entry["LastModified"].timestamp()
                begun[parts[1]] = max(begun.get(parts[1], 0.0), when)
        prefix = "pending/submissions/"
        with _unavailable():
            pages = self.s3.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for entry in page.get("Uploads", []):
                    name = entry["Key"][len(prefix) :]
                    if _ID.match(name) and name not in begun:
                        begun[name] = entry["Initiated"].timestamp()
        yield from begun.items()

    def reachable(self) -> None:
        """Raise ``StoreUnavailableError`` unless the bucket answers."""
        try:
            with _unavailable():
                self.s3.head_bucket(Bucket=self.bucket)
        except FileNotFoundError:
            raise StoreUnavailableError() from None

    def ensure_bucket(self) -> None:
        """Make the bucket if it is not there (the installer or a test; the app never does)."""
        try:
            with _unavailable():
                self.s3.head_bucket(Bucket=self.bucket)
        except FileNotFoundError:
            with _unavailable():
                self.s3.create_bucket(Bucket=self.bucket)
