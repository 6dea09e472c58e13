"""Per-process caches of what every request reads and an admin rarely changes: the installed
key manifest and the instance settings.

Every worker keeps its own copy, checked on each use against a change stamp: a small file in
``DATA_DIR`` that ``keyset.install`` and ``settings.save`` replace (atomically, by rename) right
after they commit. Reading the stamp costs one small file read instead of a database query, and
a change made through the app, the admin page or ``tipline-server`` reaches every worker of that
data folder at their next request. A change made around the app (SQL typed into the database by
hand) is picked up within ``TTL_SECONDS``, since every entry is also reloaded that often.

Several app servers (docs/DEPLOY.md "Blobs in S3") have a data folder each but share the Redis
of ``LIMITS_STORAGE``: there the stamp has a second half, a Redis key that ``changed`` replaces
too, so a manifest installed through one server is in force on all at their next request. If
Redis does not answer, nothing cached is trusted (every read goes to the database) until it does.

Order makes this safe: a writer commits, then replaces the stamp; a reader reads the stamp, then
queries. A reader that saw the old stamp may cache what it read before the commit, but stores it
under the old stamp, which no longer matches at the next request.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from flask import Flask, current_app

T = TypeVar("T")
log = logging.getLogger(__name__)

TTL_SECONDS = 10.0
STAMP_NAME = "change-stamp"
SHARED_KEY = "tipline:change-stamp"  # in the Redis every app server shares
STAMP_SIZE = 64  # a stamp is 32 hex digits; anything longer is not ours
NOATIME = getattr(os, "O_NOATIME", 0)  # allowed on files this process owns, as the stamp is


@dataclass(frozen=True)
class _Entry:
    stamp: bytes
    loaded: float
    value: object


class Cache:
    """Values kept per process, valid while the stamp is unchanged and for ``ttl`` at most."""

    def __init__(self, data_dir: Path, ttl: float = TTL_SECONDS, shared: str = "") -> None:
        self.shared: Any = None
        if shared.startswith(("redis://", "rediss://", "redis+unix://")):
            import redis

            url = shared.replace("redis+unix://", "unix://", 1)
            self.shared = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.stamp_path = data_dir / STAMP_NAME
        self.ttl = ttl
        self.clock: Callable[[], float] = time.monotonic  # tests move time forward
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def stamp(self) -> bytes:
        """The stamp as it is now (empty before the first change): this data folder's, and the
        one every app server shares, if there is a shared Redis."""
        local = self._local_stamp()
        if self.shared is None:
            return local
        try:
            remote = self.shared.get(SHARED_KEY) or b""
        except Exception:  # any failure of Redis: trust nothing cached
            return b"unshared " + secrets.token_hex(16).encode()
        return local + b"/" + bytes(remote)

    def _local_stamp(self) -> bytes:
        try:
            # O_NOATIME: a read must not record when a request came (docs/THREAT-MODEL.md);
            # only the file's owner may ask for it, so anyone else reads it the usual way.
            try:
                fd = os.open(self.stamp_path, os.O_RDONLY | os.O_CLOEXEC | NOATIME)
            except PermissionError:
                fd = os.open(self.stamp_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                return os.read(fd, STAMP_SIZE)
            finally:
                os.close(fd)
        except FileNotFoundError:
            return b""
        except OSError:
            # Unreadable (say, left by a command run as another user): trust no cached value
            # rather than one that may be stale; every call then reads the database again.
            return b"unreadable " + secrets.token_hex(16).encode()

    def get(self, name: str, load: Callable[[], T]) -> T:
        """The cached value of ``name``, or ``load()`` if it may be out of date."""
        now = self.clock()
        stamp = self.stamp()  # before loading: see the module's note on order
        entry = self._entries.get(name)
        if entry is not None and entry.stamp == stamp and now - entry.loaded < self.ttl:
            return cast(T, entry.value)
        value = load()
        self._entries[name] = _Entry(stamp, now, value)
        return value

    def changed(self) -> None:
        """Something cached was committed anew: forget it here, and tell the other workers by
        replacing the stamp.
        """
        with self._lock:
            self._entries.clear()
            temp = self.stamp_path.with_name(f".{STAMP_NAME}-{secrets.token_hex(8)}")
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
                try:
                    # Readable by the service user even if written by a command run as root
                    # (the data folder itself is 0700: nobody else can reach it).
                    os.fchmod(fd, 0o644)
                    os.write(fd, secrets.token_hex(16).encode())
                finally:
                    os.close(fd)
                os.replace(temp, self.stamp_path)
            except OSError as exc:
                # The change itself is committed; other workers see it within the TTL.
                log.warning(
                    "could not replace %s (%s): other workers may keep the old "
                    "values for up to %d s",
                    self.stamp_path.name,
                    exc.strerror,
                    self.ttl,
                )
            finally:
                temp.unlink(missing_ok=True)
            if self.shared is not None:
                try:
                    self.shared.set(SHARED_KEY, secrets.token_hex(16))
                except Exception as exc:
                    log.warning(
                        "could not tell the other app servers (%s): they may keep the old "
                        "values for up to %d s",
                        type(exc).__name__,
                        self.ttl,
                    )


def init_app(app: Flask) -> None:
    """Give the app its cache, stamped in its data folder."""
    data_dir = Path(app.config["DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    app.extensions["tipline.cache"] = Cache(data_dir, shared=app.config["LIMITS_STORAGE"])


def of(app: Any = None) -> Cache:
    """The cache of ``app`` (default: the current app)."""
    target = app if app is not None else current_app
    found: Cache = target.extensions["tipline.cache"]
    return found
