"""The server's ephemeral spool for the no-JS path (docs/SPEC.md §7).

An upload's bytes are encrypted as they arrive under a random key that lives only in this
object, so a temporary file never holds plaintext and is unreadable once the request ends.
"""

from __future__ import annotations

from typing import BinaryIO

import nacl.bindings as sodium
import nacl.exceptions

from . import primitives
from .errors import SpoolError
from .format import ABYTES, CHUNK_SIZE

_TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL


class Spool:
    """Write plaintext in, read it back once; only ciphertext touches ``file``."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.size = 0
        self._key = primitives.random_bytes(32)
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        self._header = sodium.crypto_secretstream_xchacha20poly1305_init_push(
            self._state, self._key
        )
        self._buffer = bytearray()
        self._first = True
        self._closed = False

    def write(self, data: bytes) -> int:
        """Encrypt and append; full chunks go to the file at once."""
        if self._closed:
            raise ValueError("the spool is closed for writing")
        self._buffer += data
        self.size += len(data)
        while len(self._buffer) >= CHUNK_SIZE:
            self._push(bytes(self._buffer[:CHUNK_SIZE]), _TAG_MESSAGE)
            del self._buffer[:CHUNK_SIZE]
        return len(data)

    def _push(self, chunk: bytes, tag: int) -> None:
        ad = primitives.DS_SPOOL if self._first else None
        self._first = False
        self.file.write(
            sodium.crypto_secretstream_xchacha20poly1305_push(self._state, chunk, ad, tag)
        )

    def close_writing(self) -> None:
        """Flush the last (possibly empty) chunk tagged FINAL."""
        if not self._closed:
            self._push(bytes(self._buffer), _TAG_FINAL)
            self._buffer.clear()
            self._closed = True
            self.file.flush()

    def reader(self) -> SpoolReader:
        """A reader that decrypts the spool from the start."""
        self.close_writing()
        self.file.seek(0)
        return SpoolReader(self.file, self._key, self._header)


class SpoolReader:
    """``read(n)`` over a finished spool, one chunk in memory at a time."""

    def __init__(self, file: BinaryIO, key: bytes, header: bytes) -> None:
        self.file = file
        self.state = sodium.crypto_secretstream_xchacha20poly1305_state()
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(self.state, header, key)
        self.buffer = b""
        self.final = False
        self.first = True

    def _fill(self) -> None:
        data = self.file.read(CHUNK_SIZE + ABYTES)
        try:
            chunk, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(
                self.state, data, primitives.DS_SPOOL if self.first else None
            )
        except (nacl.exceptions.CryptoError, ValueError) as exc:
            raise SpoolError() from exc
        self.first = False
        self.final = tag == _TAG_FINAL
        self.buffer = chunk

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` plaintext bytes (fewer only at the end)."""
        if size < 0:
            raise ValueError("read the spool in bounded pieces")
        while not self.buffer and not self.final:
            self._fill()
        piece, self.buffer = self.buffer[:size], self.buffer[size:]
        return piece
