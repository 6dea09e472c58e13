"""The no-JS path's upload handling: every file part is encrypted the moment it arrives.

Werkzeug writes uploads over 500 KB to temporary files. ``SealingRequest`` replaces that stream
factory with ``SpoolFile``, so each part goes through ``tipline.crypto.spool.Spool`` (a key that
lives only in this request's memory) and no plaintext byte ever reaches a disk (docs/SPEC.md §7).
"""

from __future__ import annotations

import tempfile
from typing import IO, Any, BinaryIO, cast

from flask import Request, current_app

from ..crypto.spool import Spool, SpoolReader


class SpoolFile:
    """The file-like object the form parser writes an upload into: it encrypts on ``write``."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._spool = Spool(file)

    @property
    def size(self) -> int:
        """How many plaintext bytes were written."""
        return self._spool.size

    def write(self, data: bytes) -> int:
        """Encrypt and append."""
        return self._spool.write(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        """The parser seeks to 0 when a part ends: that closes the spool for writing."""
        if offset != 0 or whence != 0:
            raise ValueError("a spool can only be rewound")
        self._spool.close_writing()
        return 0

    def reader(self) -> SpoolReader:
        """Decrypt the part from the start, one chunk in memory at a time."""
        return self._spool.reader()

    def read(self, size: int = -1, /) -> bytes:
        """Nobody reads the ciphertext as if it were the upload."""
        raise OSError("read a SpoolFile through reader()")

    def close(self) -> None:
        """Close and so delete the temporary file (it was unlinked at creation)."""
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
        # An unnamed temporary file: unlinked at once, gone when the request closes it.
        folder = current_app.extensions["tipline.blobs"].tmp
        file = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115 - the request closes it
        return cast(IO[bytes], SpoolFile(file))
