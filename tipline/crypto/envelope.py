"""Envelope v1: streaming seal, open and re-wrap between file objects (docs/SPEC.md §4).

Memory stays bounded by a few chunks whatever the payload size: plaintext goes in and out in
pieces of at most ``CHUNK_SIZE`` bytes.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
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
        raise EnvelopeOpenError()
    raise EnvelopeOpenError()


class _ChunkReader:
    """Yields authenticated plaintext chunks; enforces FINAL, no empty chunks, no trailing data.

    Each chunk is a view into a reused buffer, valid until the next one is pulled.
    """

    def __init__(self, src: Readable, payload_key: bytes, ss_header: bytes) -> None:
        self.src = src
        try:
            self.puller = Puller(payload_key, ss_header, fmt.CHUNK_SIZE)
        except (nacl.exceptions.CryptoError, ValueError) as exc:
            raise EnvelopeOpenError() from exc
        self.ad: bytes | None = fmt.PREAMBLE + ss_header
        self.final = False

    def _fill(self) -> int:
        """Read up to a whole ciphertext chunk into the puller's input buffer."""
        buf, got = self.puller.inbuf, 0
        readinto = getattr(self.src, "readinto", None)
        while got < len(buf):
            if readinto is not None:
                n = readinto(memoryview(buf)[got:])
            else:
                piece = self.src.read(len(buf) - got)
                buf[got : got + len(piece)] = piece
                n = len(piece)
            if not n:
                break
            got += n
        return got

    def chunks(self) -> Iterator[memoryview]:
        full = fmt.CHUNK_SIZE + fmt.ABYTES
        while not self.final:
            size = self._fill()
            result = self.puller.pull(size, self.ad) if size > fmt.ABYTES else None
            if result is None:
                raise EnvelopeOpenError()
            chunk, tag = result
            self.ad = None
            if tag == TAG_FINAL:
                self.final = True
                if self.src.read(1):
                    raise EnvelopeOpenError()
            elif tag != TAG_MESSAGE or size < full:
                raise EnvelopeOpenError()
            yield chunk


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


def open_envelope(src: Readable, identities: Sequence[bytes], sink: Sink | None = None) -> Inner:
    """Open an envelope with any of the X25519 secret keys in ``identities``.

    Attachment bytes go to ``sink(index, attachment)``'s file, or are checked and dropped when it
    returns None. They are unverified until this returns: on any error the caller MUST discard
    everything the sink received.
    """
    header, file_key = _unwrap(src, identities)
    payload_key, _ = _keys(file_key)
    plain = _Plaintext(_ChunkReader(src, payload_key, header.ss_header).chunks())
    size = int.from_bytes(plain.read(4), "big")
    if not 1 <= size <= MAX_INNER_MANIFEST:
        raise EnvelopeContentError(f"the inner manifest length must be 1 to {MAX_INNER_MANIFEST}")
    inner = parse_inner(plain.read(size))
    length = 4 + size + sum(a.size for a in inner.attachments)
    if length > MAX_PLAINTEXT:
        raise EnvelopeContentError("the attachments are larger than the format allows")
    for index, attachment in enumerate(inner.attachments):
        out = sink(index, attachment) if sink is not None else None
        for piece in plain.pieces(attachment.size):
            if out is not None:
                out.write(piece)
    padding = padded_length(length) - length
    for piece in plain.pieces(padding):
        if piece != _ZEROS[: len(piece)]:  # memoryview comparison: memcmp, not a Python loop
            raise EnvelopeContentError("the padding is not zero")
    if not plain.at_end():
        raise EnvelopeContentError("the plaintext is longer than its padded length")
    return inner


def rewrap(
    src: Readable, dst: BinaryIO, identities: Sequence[bytes], recipients: Sequence[bytes]
) -> None:
    """Re-seal the file key to ``recipients``; the payload is copied byte for byte, unread."""
    header, file_key = _unwrap(src, identities)
    dst.write(_header(recipients, file_key, header.ss_header))
    shutil.copyfileobj(src, dst, fmt.CHUNK_SIZE)
