"""Envelope v1: streaming seal, open and re-wrap between file objects (docs/SPEC.md §4).

Memory stays bounded by a few chunks whatever the payload size: plaintext goes in and out in
pieces of at most ``CHUNK_SIZE`` bytes.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from typing import BinaryIO, Protocol

import nacl.bindings as sodium
import nacl.exceptions
from nacl.public import PrivateKey, PublicKey, SealedBox

from . import format as fmt
from . import primitives
from .errors import EnvelopeContentError, EnvelopeOpenError
from .inner import MAX_INNER_MANIFEST, MAX_PLAINTEXT, Attachment, Inner, parse_inner
from .keys import key_id
from .padding import padded_length
from .pipeline import ReadAhead, Target, WriteBehind, fill, write_all
from .stream import Puller

TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
_SS = sodium.crypto_secretstream_xchacha20poly1305_state
_ZEROS = memoryview(bytes(fmt.CHUNK_SIZE))


class Readable(Protocol):
    """Anything with ``read(n)``: a file, a spool reader, an upload stream."""

    def read(self, size: int = -1, /) -> bytes: ...


Sink = Callable[[int, Attachment], BinaryIO | None]


def _keys(file_key: bytes) -> tuple[bytes, bytes]:
    return (
        primitives.prf(file_key, primitives.LABEL_PAYLOAD_KEY, 32),
        primitives.prf(file_key, primitives.LABEL_HEADER_MAC, 32),
    )


def _header(recipients: Sequence[bytes], file_key: bytes, ss_header: bytes) -> bytes:
    if len({bytes(pk) for pk in recipients}) != len(recipients):
        raise ValueError("a recipient is listed twice")
    stanzas = tuple(
        fmt.Stanza(key_id(pk), SealedBox(PublicKey(pk)).encrypt(file_key)) for pk in recipients
    )
    body = fmt.encode_header_without_mac(stanzas, ss_header)
    return body + primitives.mac(_keys(file_key)[1], body)


class _ChunkWriter:
    """Cuts plaintext into chunks; the chunk that reaches ``total`` bytes is tagged FINAL."""

    def __init__(self, dst: BinaryIO, payload_key: bytes, total: int) -> None:
        self.dst, self.total, self.written = dst, total, 0
        self.state = _SS()
        self.ss_header = sodium.crypto_secretstream_xchacha20poly1305_init_push(
            self.state, payload_key
        )
        self.buffer = bytearray()
        self.first = True

    def write(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= fmt.CHUNK_SIZE:
            self._push(bytes(self.buffer[: fmt.CHUNK_SIZE]))
            del self.buffer[: fmt.CHUNK_SIZE]

    def _push(self, chunk: bytes) -> None:
        self.written += len(chunk)
        if self.written > self.total:
            raise ValueError("more plaintext than announced")
        tag = TAG_FINAL if self.written == self.total else TAG_MESSAGE
        ad = fmt.PREAMBLE + self.ss_header if self.first else None
        self.first = False
        self.dst.write(
            sodium.crypto_secretstream_xchacha20poly1305_push(self.state, chunk, ad, tag)
        )

    def close(self) -> None:
        if self.buffer:
            self._push(bytes(self.buffer))
            self.buffer.clear()
        if self.written != self.total:
            raise ValueError("less plaintext than announced")


def seal(
    dst: BinaryIO,
    recipients: Sequence[bytes],
    inner: Inner,
    sources: Sequence[Readable] = (),
) -> int:
    """Seal ``inner`` and the attachments read from ``sources`` (one per attachment, each giving
    exactly its announced size) to the recipients' X25519 public keys. Returns bytes written.
    """
    if len(sources) != len(inner.attachments):
        raise ValueError("one source per attachment")
    manifest = inner.encode()
    length = 4 + len(manifest) + sum(a.size for a in inner.attachments)
    if length > MAX_PLAINTEXT:
        raise EnvelopeContentError("the submission is too large")
    total = padded_length(length)
    file_key = primitives.random_bytes(32)
    payload_key, _ = _keys(file_key)
    writer = _ChunkWriter(dst, payload_key, total)
    header = _header(recipients, file_key, writer.ss_header)
    dst.write(header)
    writer.write(len(manifest).to_bytes(4, "big") + manifest)
    for attachment, source in zip(inner.attachments, sources, strict=True):
        remaining = attachment.size
        while remaining:
            piece = source.read(min(remaining, fmt.CHUNK_SIZE))
            if not piece:
                raise ValueError(f"attachment {attachment.name!r} is shorter than announced")
            remaining -= len(piece)
            writer.write(piece)
        if source.read(1):
            raise ValueError(f"attachment {attachment.name!r} is longer than announced")
    padding = total - length
    zeros = bytes(min(padding, fmt.CHUNK_SIZE))
    while padding:
        step = min(padding, len(zeros))
        writer.write(zeros[:step])
        padding -= step
    writer.close()
    return fmt.ciphertext_size(total, len(recipients))


def _read_exact(src: Readable, size: int) -> bytes:
    parts, got = [], 0
    while got < size:
        piece = src.read(size - got)
        if not piece:
            break
        parts.append(piece)
        got += len(piece)
    return b"".join(parts)


def _unwrap(src: Readable, identities: Sequence[bytes]) -> tuple[fmt.Header, bytes]:
    """Read and check the header; return it and the file key."""
    prefix = _read_exact(src, fmt.PREAMBLE_SIZE + 1)
    rest = _read_exact(src, fmt.header_size_from_prefix(prefix) - len(prefix))
    header = fmt.parse_header(prefix + rest)
    by_id = {key_id(bytes(PrivateKey(sk).public_key)): sk for sk in identities}
    for stanza in header.stanzas:
        secret = by_id.get(stanza.key_id)
        if secret is None:
            continue
        try:
            file_key = SealedBox(PrivateKey(secret)).decrypt(stanza.sealed_key)
        except nacl.exceptions.CryptoError:
            continue
        if len(file_key) == 32 and primitives.equal(
            primitives.mac(_keys(file_key)[1], header.mac_input()), header.mac
        ):
            return header, file_key
        raise EnvelopeOpenError()  # check: header-mac
    raise EnvelopeOpenError()  # check: no-key


# Chunks per block, read or written behind (256 KiB). The same for both, so a copied
# ciphertext block is handed to the writer with the plaintext block decrypted from it, and
# never more than one waits for a hand-over (the read ring cannot run dry while one does).
BLOCK_CHUNKS = 4
DEPTH = 2  # blocks in flight on each helper thread
COPY_DEPTH = 2  # more ciphertext blocks in flight when they are also copied (the desk's import)
_FULL = fmt.CHUNK_SIZE + fmt.ABYTES


class _Output:
    """Where plaintext chunks are decrypted to, and how attachment bytes reach their files.

    Writes happen at once until a large envelope (``threads`` given) has something to write;
    from the next chunk on, chunks are decrypted into a ring of blocks that a ``WriteBehind``
    thread writes out while the following block is decrypted.
    """

    def __init__(self, write_behind: bool) -> None:
        self.allowed = write_behind
        self.threads: ExitStack | None = None  # set for an envelope longer than one block
        self.writer: WriteBehind | None = None
        self.buffer: bytearray | None = None
        self.wanted = False
        self.used = 0

    def slot(self) -> tuple[bytearray, int]:
        """A buffer and an offset with room for one chunk's plaintext."""
        if self.writer is None and self.wanted and self.threads is not None:
            block = BLOCK_CHUNKS * fmt.CHUNK_SIZE
            self.writer = self.threads.enter_context(WriteBehind(block, DEPTH))
            self.used = 0
        if self.writer is None:
            if self.buffer is None:
                self.buffer = bytearray(fmt.CHUNK_SIZE)
            return self.buffer, 0
        if self.used == BLOCK_CHUNKS:
            self.writer.submit()  # the block's views are all written or queued by now
            self.used = 0
        self.used += 1
        return self.writer.buffer(), (self.used - 1) * fmt.CHUNK_SIZE

    def write(
        self, target: Target, view: memoryview, release: Callable[[], None] | None = None
    ) -> None:
        """Write ``view`` now or behind; ``release`` is called once it is written."""
        if self.writer is not None:
            self.writer.write(target, view, release)
            return
        write_all(target, view)  # before the next chunk is decrypted over it
        if release is not None:
            release()
        self.wanted = self.allowed

    def drain(self) -> None:
        """Wait until every byte written so far is with its target."""
        if self.writer is not None:
            self.writer.drain()


class _ChunkReader:
    """Yields authenticated plaintext chunks; enforces FINAL, no empty chunks, no trailing data.

    Ciphertext is read in blocks of whole chunks. With ``read_ahead``, a ``ReadAhead`` thread
    reads every block after the first while this one decrypts. Each chunk is a view valid until
    the next one is pulled.
    """

    def __init__(
        self,
        src: Readable,
        payload_key: bytes,
        ss_header: bytes,
        threads: ExitStack,
        out: _Output,
        copy_to: Target | None,
        read_ahead: bool,
    ) -> None:
        self.src, self.threads, self.out, self.copy_to = src, threads, out, copy_to
        self.read_ahead = read_ahead
        try:
            self.puller = Puller(payload_key, ss_header, fmt.CHUNK_SIZE)
        except (nacl.exceptions.CryptoError, ValueError) as exc:
            raise EnvelopeOpenError() from exc  # check: stream-header
        self.ad: bytes | None = fmt.PREAMBLE + ss_header
        self.ahead: ReadAhead | None = None

    def _blocks(self) -> Iterator[memoryview]:
        """Blocks of whole chunks (only the last may be short), then an empty one at the end."""
        size = BLOCK_CHUNKS * _FULL
        first = bytearray(size)
        block = memoryview(first)[: fill(self.src, first)]
        if len(block) < size:  # the whole stream fitted: no threads for a small envelope
            yield block
            yield memoryview(b"")
            return
        self.out.threads = self.threads
        if not self.read_ahead:
            while True:
                yield block
                block = (
                    memoryview(first)[: fill(self.src, first)] if len(block) == size else block[:0]
                )
        depth = DEPTH + (COPY_DEPTH if self.copy_to is not None else 0)
        ahead = self.ahead = self.threads.enter_context(ReadAhead(self.src, size, depth, first))
        while True:
            yield block
            block = ahead.next()

    def chunks(self) -> Iterator[memoryview]:
        blocks = self._blocks()
        for block in blocks:
            if not len(block):
                raise EnvelopeOpenError()  # check: missing-final (ended before a FINAL chunk)
            pos = 0
            while pos < len(block):
                size = min(_FULL, len(block) - pos)
                dst, at = self.out.slot()
                result = (
                    self.puller.pull_at(block, pos, size, dst, at, self.ad)
                    if size > fmt.ABYTES
                    else None
                )
                if result is None:
                    raise EnvelopeOpenError()  # check: chunk-auth
                length, tag = result
                self.ad = None
                pos += size
                if pos == len(block) and self.copy_to is not None:
                    # Every chunk of it is decrypted: write it (behind, when read ahead, its
                    # buffer kept out of the read ring until the writer is done with it).
                    if self.ahead is not None:
                        self.out.write(self.copy_to, block, self.ahead.keep())
                    else:
                        write_all(self.copy_to, block)
                if tag == TAG_FINAL:
                    if pos < len(block) or len(next(blocks)):
                        raise EnvelopeOpenError()  # check: trailing-data (after the FINAL chunk)
                    yield memoryview(dst)[at : at + length]
                    return
                if tag != TAG_MESSAGE or size < _FULL:
                    raise EnvelopeOpenError()  # check: non-final-tag (or a short non-FINAL chunk)
                yield memoryview(dst)[at : at + length]


class _Plaintext:
    """A reader over the chunk stream that hands out exact byte counts."""

    def __init__(self, chunks: Iterator[memoryview]) -> None:
        self.chunks, self.pos = chunks, 0
        self.buffer: memoryview = memoryview(b"")

    def pieces(self, size: int) -> Iterator[memoryview]:
        """Yield exactly ``size`` bytes in pieces, without holding more than one chunk."""
        while size:
            if self.pos == len(self.buffer):
                self.buffer, self.pos = next(self.chunks, memoryview(b"")), 0
                if not len(self.buffer):
                    raise EnvelopeContentError("the plaintext is shorter than it says")
            step = min(size, len(self.buffer) - self.pos)
            yield self.buffer[self.pos : self.pos + step]
            self.pos += step
            size -= step

    def read(self, size: int) -> bytes:
        return b"".join(bytes(p) for p in self.pieces(size))

    def at_end(self) -> bool:
        return self.pos == len(self.buffer) and next(self.chunks, None) is None


def open_envelope(
    src: Readable,
    identities: Sequence[bytes],
    sink: Sink | None = None,
    *,
    copy_to: Target | None = None,
    read_ahead: bool = False,
    write_behind: bool = True,
) -> Inner:
    """Open an envelope with any of the X25519 secret keys in ``identities``.

    Attachment bytes go to ``sink(index, attachment)``'s file, or are checked and dropped when it
    returns None. They are unverified until this returns: on any error the caller MUST discard
    everything the sink received. Every byte of the envelope read from ``src`` is also written
    to ``copy_to`` when one is given (to store the envelope while opening it, in one pass); it
    too is unverified until this returns.

    With ``write_behind``, a large envelope's attachments (and, when read ahead, its copy) are
    written on a helper thread while the next block is decrypted; with ``read_ahead``, another
    reads ``src`` ahead (worth it when reading costs time of its own, as a bundle entry that
    hashes what it reads does). They use a second core when there is one free, and end before
    this returns or raises; an error on one is raised here as it would have been.
    """
    header, file_key = _unwrap(src, identities)
    if copy_to is not None:
        write_all(copy_to, header.encode())
    payload_key, _ = _keys(file_key)
    out = _Output(write_behind)
    with ExitStack() as threads:
        reader = _ChunkReader(src, payload_key, header.ss_header, threads, out, copy_to, read_ahead)
        plain = _Plaintext(reader.chunks())
        size = int.from_bytes(plain.read(4), "big")
        if not 1 <= size <= MAX_INNER_MANIFEST:
            raise EnvelopeContentError(
                f"the inner manifest length must be 1 to {MAX_INNER_MANIFEST}"
            )
        inner = parse_inner(plain.read(size))
        length = 4 + size + sum(a.size for a in inner.attachments)
        if length > MAX_PLAINTEXT:
            raise EnvelopeContentError("the attachments are larger than the format allows")
        for index, attachment in enumerate(inner.attachments):
            out.drain()  # the sink sees the earlier attachments' files complete, as before
            target = sink(index, attachment) if sink is not None else None
            for piece in plain.pieces(attachment.size):
                if target is not None:
                    out.write(target, piece)
        padding = padded_length(length) - length
        for piece in plain.pieces(padding):
            if piece != _ZEROS[: len(piece)]:  # memoryview comparison: memcmp, not a Python loop
                raise EnvelopeContentError("the padding is not zero")
        if not plain.at_end():
            raise EnvelopeContentError("the plaintext is longer than its padded length")
        out.drain()
    return inner


def rewrap(
    src: Readable, dst: BinaryIO, identities: Sequence[bytes], recipients: Sequence[bytes]
) -> None:
    """Re-seal the file key to ``recipients``; the payload is copied byte for byte, unread."""
    header, file_key = _unwrap(src, identities)
    dst.write(_header(recipients, file_key, header.ss_header))
    shutil.copyfileobj(src, dst, fmt.CHUNK_SIZE)
