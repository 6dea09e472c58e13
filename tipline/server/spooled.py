"""The no-JS path's upload handling: every file part is encrypted the moment it arrives.

Werkzeug writes uploads over 500 KB to temporary files. ``SealingRequest`` replaces that stream
factory with ``SpoolFile``, so each part goes through ``tipline.crypto.spool.Spool`` (a key that
lives only in this request's memory) and no plaintext byte ever reaches a disk (docs/SPEC.md §7).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from flask import Request, current_app

from ..crypto.spool import Spool, SpoolReader


class SpoolFile:
    """The file-like object the form parser writes an upload into: it encrypts on ``write``.

    The temporary file is made at the first byte, not before: the no-JS form always sends a
    file part, empty when no file was chosen, and most tips have none.
    """

    def __init__(self, folder: Path, check_space: Callable[[int], None] | None = None) -> None:
        self._folder = folder
        self._check_space = check_space
        self._file: BinaryIO | None = None
        self._spool: Spool | None = None
        self._ended = False

    def _open(self) -> Spool:
        if self._spool is None:
            # An unnamed temporary file: unlinked at once, gone when the request closes it.
            self._file = cast(BinaryIO, tempfile.TemporaryFile(dir=self._folder))  # noqa: SIM115
            self._spool = Spool(self._file)
        return self._spool

    @property
    def size(self) -> int:
        """How many plaintext bytes were written."""
        return self._spool.size if self._spool is not None else 0

    def write(self, data: bytes) -> int:
        """Encrypt and append."""
        if self._ended:
            raise ValueError("the spool is closed for writing")
        if not data:
            return 0
        if self._check_space is not None:
            # The free-space floor (MIN_FREE_BYTES) holds for the spool too: LowDiskSpaceError
            # ends the request with a 503 before this write.
            self._check_space(len(data))
        return self._open().write(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        """The parser seeks to 0 when a part ends: that closes the spool for writing."""
        if offset != 0 or whence != 0:
            raise ValueError("a spool can only be rewound")
        self._ended = True
        if self._spool is not None:
            self._spool.close_writing()
        return 0

    def reader(self) -> SpoolReader:
        """Decrypt the part from the start, one chunk in memory at a time."""
        self._ended = True
        return self._open().reader()

    def read(self, size: int = -1, /) -> bytes:
        """Nobody reads the ciphertext as if it were the upload."""
        raise OSError("read a SpoolFile through reader()")

    def close(self) -> None:
        """Close and so delete the temporary file (it was unlinked at creation)."""
        if self._file is not None:
            self._file.close()

    def __getattr__(self, name: str) -> Any:
        # FileStorage probes attributes such as ``readable``; refuse anything unexpected.
        raise AttributeError(name)


class SealingRequest(Request):
    """A request whose file uploads are encrypted on arrival."""

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        store = current_app.extensions["tipline.blobs"]
        spool = SpoolFile(store.tmp, store.check_space)
        self.__dict__.setdefault("_tipline_spools", []).append(spool)
        return cast(IO[bytes], spool)

    def close(self) -> None:
        """Close every spool too: one a refused body (413, 503) left half-written is not in
        ``files`` and would otherwise stay open until garbage collection."""
        try:
            super().close()
        finally:
            for spool in self.__dict__.get("_tipline_spools", []):
                spool.close()
