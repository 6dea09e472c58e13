"""The blob store on any S3-compatible service (SeaweedFS, Garage, Ceph RGW, ...), via boto3.

Chosen by ``BLOB_STORE = "s3"`` (docs/ADMIN.md); the local folder (``blobs.BlobStore``) stays the
default. Same methods for blobs (write, open, delete, exists, ids, publish), so the rest of the
server does not care which it has; resumable uploads use the ``upload_*`` methods below.

Layout in the bucket (docs/SPEC.md §7.1):
- ``pending/<kind>/<id>``: a new blob, until the hourly publication copies it to ``<kind>/<id>``
  (an object's LastModified is exact; a published copy's says only when a publication ran);
- ``uploads/<id>/<offset>``: each acknowledged chunk of a resumable upload as its own object
  (offset in 20 digits), so chunks may land on different app servers: what was acknowledged is
  what the bucket lists, which every server sees alike. ``finish`` composes them (a multipart
  upload) into ``pending/submissions/<id>`` and, after the row is committed, removes them.

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
from pathlib import Path
from typing import Any, BinaryIO, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .blobs import KINDS, LowDiskSpaceError, StoreUnavailableError, hour_start

log = logging.getLogger(__name__)
_ID = re.compile(r"\A[0-9a-f]{32}\Z")
_PART = 8 << 20  # multipart part size when composing a finished upload
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}


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


class _Concatenated:
    """A readable stream of several objects one after another (for composing an upload)."""

    def __init__(self, opener: Callable[[str], BinaryIO], keys: list[str]) -> None:
        self._opener, self._keys, self._current = opener, list(keys), cast(BinaryIO | None, None)

    def read(self, size: int = -1) -> bytes:
        out = bytearray()
        while size < 0 or len(out) < size:
            if self._current is None:
                if not self._keys:
                    break
                self._current = self._opener(self._keys.pop(0))
            piece = self._current.read(-1 if size < 0 else size - len(out))
            if not piece:
                self._current.close()
                self._current = None
                continue
            out += piece
        return bytes(out)


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
        client: Any = None,
    ) -> None:
        self.root, self.min_free, self.bucket = root, min_free, bucket
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.s3 = client or boto3.client(
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
        self._published_hour = 0.0
        self._publishing = threading.Lock()
        self._publisher_pid = 0
        self.conditional = True  # If-None-Match on chunks, until the service says it has none

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
        and remove the pending one; returns how many. The copy's LastModified is this run's."""
        cutoff = hour_start(now)
        moved = 0
        for kind in KINDS:
            for entry in list(self._list(f"pending/{kind}/")):
                name = entry["Key"].rsplit("/", 1)[-1]
                if not _ID.match(name) or entry["LastModified"].timestamp() >= cutoff:
                    continue
                with _unavailable():
                    self.s3.copy_object(
                        Bucket=self.bucket,
                        Key=f"{kind}/{name}",
                        CopySource={"Bucket": self.bucket, "Key": entry["Key"]},
                    )
                    self.s3.delete_object(Bucket=self.bucket, Key=entry["Key"])
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
        """Store an upload's header as its first chunk."""
        with _unavailable():
            self.s3.put_object(
                Bucket=self.bucket, Key=f"{self._upload_prefix(upload_id)}{0:020d}", Body=header
            )

    def _chunks(self, upload_id: str) -> list[tuple[int, int, str, float]]:
        """The contiguous run of chunks from offset 0: (offset, size, key, time)."""
        prefix = self._upload_prefix(upload_id)
        found = {}
        for entry in self._list(prefix):
            tail = entry["Key"][len(prefix) :]
            if tail.isdigit():
                found[int(tail)] = (entry["Size"], entry["Key"], entry["LastModified"].timestamp())
        run, at = [], 0
        while at in found:
            size, key, when = found[at]
            if size == 0:
                break
            run.append((at, size, key, when))
            at += size
        return run

    def upload_received(self, upload_id: str) -> int | None:
        """How many bytes are acknowledged, or None if nothing is stored for this upload."""
        run = self._chunks(upload_id)
        return run[-1][0] + run[-1][1] if run else None

    def upload_last_activity(self, upload_id: str) -> float | None:
        """When the upload's latest chunk arrived (None if it has none)."""
        run = self._chunks(upload_id)
        return max(when for *_, when in run) if run else None

    def upload_append(self, upload_id: str, offset: int, data: bytes) -> None:
        """Store one chunk at ``offset`` (the caller checked it follows what is acknowledged).
        Written only if no chunk is there yet (``If-None-Match: *``), so two requests racing
        for one offset on two servers cannot both win: the loser gets ``FileExistsError``.
        A service without conditional writes (it answers NotImplemented) gets plain writes."""
        key = f"{self._upload_prefix(upload_id)}{offset:020d}"
        if self.conditional:
            try:
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*")
                return
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code"))
                if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                    raise FileExistsError("that part is stored already") from None
                if code != "NotImplemented":
                    with _unavailable():
                        raise
                log.warning("the S3 store has no conditional writes: racing chunks may clash")
                self.conditional = False
            except BotoCoreError:
                with _unavailable():
                    raise
        with _unavailable():
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def upload_head(self, upload_id: str, size: int) -> bytes:
        """The first ``size`` bytes of the upload (its header is its first chunk)."""
        with _unavailable():
            body = self.s3.get_object(
                Bucket=self.bucket, Key=f"{self._upload_prefix(upload_id)}{0:020d}"
            )["Body"]
            with body:
                return cast(bytes, body.read(size))

    def upload_compose(self, upload_id: str) -> None:
        """Concatenate the upload's chunks into ``pending/submissions/<id>`` (multipart)."""
        keys = [key for _, _, key, _ in self._chunks(upload_id)]
        target = self.pending_key("submissions", upload_id)

        def opener(key: str) -> BinaryIO:
            with _unavailable():
                return cast(BinaryIO, self.s3.get_object(Bucket=self.bucket, Key=key)["Body"])

        stream = _Concatenated(opener, keys)
        with _unavailable():
            started = self.s3.create_multipart_upload(Bucket=self.bucket, Key=target)
        multipart = started["UploadId"]
        try:
            parts: list[dict[str, Any]] = []
            number = 1
            while True:
                piece = stream.read(_PART)
                if not piece and parts:
                    break
                with _unavailable():
                    done = self.s3.upload_part(
                        Bucket=self.bucket,
                        Key=target,
                        UploadId=multipart,
                        PartNumber=number,
                        Body=piece,
                    )
                parts.append({"PartNumber": number, "ETag": done["ETag"]})
                number += 1
                if len(piece) < _PART:
                    break
            with _unavailable():
                self.s3.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=target,
                    UploadId=multipart,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            with contextlib.suppress(ClientError, BotoCoreError):
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=target, UploadId=multipart)
            raise

    def upload_discard(self, upload_id: str) -> None:
        """Remove every chunk of an upload (missing is fine)."""
        keys = [entry["Key"] for entry in self._list(self._upload_prefix(upload_id))]
        for start in range(0, len(keys), 1000):
            with _unavailable():
                self.s3.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]]},
                )

    def upload_ids(self) -> Iterator[tuple[str, float]]:
        """Every upload with chunks stored: its id and its latest chunk's time."""
        latest: dict[str, float] = {}
        for entry in self._list("uploads/"):
            parts = entry["Key"].split("/")
            if len(parts) == 3 and _ID.match(parts[1]):
                when = entry["LastModified"].timestamp()
                latest[parts[1]] = max(latest.get(parts[1], 0.0), when)
        yield from latest.items()

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
