"""Pulling secretstream chunks without a copy per chunk (the envelope reader's hot loop).

PyNaCl's ``crypto_secretstream_xchacha20poly1305_pull`` allocates and copies every 64 KiB
plaintext chunk; at the speed of the cipher that copy is a fifth of the time. This calls the same
libsodium function through PyNaCl's own cffi binding with buffers allocated once, so each chunk is
read into one buffer and decrypted into another. The state still comes from PyNaCl's
``init_pull``, so nothing here sets up keys or nonces.
"""

from __future__ import annotations

from typing import Any

import nacl.bindings as sodium
from nacl._sodium import ffi, lib

ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES


class Puller:
    """Decrypts successive chunks of at most ``chunk_size`` plaintext bytes in place.

    ``pull`` returns a view into a buffer that the next call overwrites: callers write it out or
    copy it before pulling again.
    """

    def __init__(self, key: bytes, header: bytes, chunk_size: int) -> None:
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(self._state, header, key)
        self.inbuf = bytearray(chunk_size + ABYTES)
        self._in: Any = ffi.from_buffer(self.inbuf)
        self._out: Any = ffi.new("unsigned char[]", chunk_size)
        self._view = memoryview(ffi.buffer(self._out))
        self._mlen: Any = ffi.new("unsigned long long *")
        self._tag: Any = ffi.new("unsigned char *")
        self._chunk = chunk_size
        self._src: tuple[object, Any] = (None, None)
        self._dst: tuple[object, Any] = (None, None)

    def pull(self, size: int, ad: bytes | None) -> tuple[memoryview, int] | None:
        """Authenticate and decrypt ``inbuf[:size]``; None when it does not authenticate."""
        if not ABYTES <= size <= len(self.inbuf):
            return None
        rc = lib.crypto_secretstream_xchacha20poly1305_pull(
            self._state.statebuf,
            self._out,
            self._mlen,
            self._tag,
            self._in,
            size,
            ad if ad is not None else ffi.NULL,
            len(ad) if ad is not None else 0,
        )
        if rc != 0:
            return None
        return self._view[: self._mlen[0]], int(self._tag[0])

    def pull_at(
        self,
        src: bytes | bytearray | memoryview,
        start: int,
        size: int,
        dst: bytearray,
        at: int,
        ad: bytes | None,
    ) -> tuple[int, int] | None:
        """Authenticate and decrypt ``src[start:start + size]`` straight into ``dst`` at ``at``,
        with no copy on either side; return the plaintext length and the tag, or None when it
        does not authenticate. Every bound is checked here, before libsodium writes anything.
        """
        if not (ABYTES <= size <= self._chunk + ABYTES and 0 <= start <= len(src) - size):
            return None
        if not 0 <= at <= len(dst) - (size - ABYTES):
            raise ValueError("the output buffer is too small")
        # One cffi view per buffer, kept while the same buffer comes back (a ring reuses them).
        if self._src[0] is not src:
            self._src = (src, ffi.from_buffer(src))
        if self._dst[0] is not dst:
            self._dst = (dst, ffi.from_buffer(dst, require_writable=True))
        rc = lib.crypto_secretstream_xchacha20poly1305_pull(
            self._state.statebuf,
            self._dst[1] + at,
            self._mlen,
            self._tag,
            self._src[1] + start,
            size,
            ad if ad is not None else ffi.NULL,
            len(ad) if ad is not None else 0,
        )
        if rc != 0:
            return None
        return int(self._mlen[0]), int(self._tag[0])
