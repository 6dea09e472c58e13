"""The envelope header's byte layout (docs/SPEC.md §4.1): parsing and writing, no cryptography.

Everything here can run on bytes from anyone, so every length is checked before it is used.
The server calls ``parse_header`` to check an upload's key ids without being able to open it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import EnvelopeFormatError

MAGIC = b"TIPLINE"
VERSION = 1
CHUNK_LOG2 = 16
CHUNK_SIZE = 1 << CHUNK_LOG2
PREAMBLE = MAGIC + bytes([VERSION, 0, CHUNK_LOG2])
PREAMBLE_SIZE = len(PREAMBLE)  # 10
MAX_STANZAS = 32
KEY_ID_SIZE = 16
SEALED_KEY_SIZE = 80  # crypto_box_SEALBYTES (48) + a 32-byte file key
STANZA_SIZE = KEY_ID_SIZE + SEALED_KEY_SIZE
SS_HEADER_SIZE = 24  # crypto_secretstream_xchacha20poly1305_HEADERBYTES
MAC_SIZE = 32
ABYTES = 17  # crypto_secretstream_xchacha20poly1305_ABYTES
MAX_HEADER_SIZE = PREAMBLE_SIZE + 1 + MAX_STANZAS * STANZA_SIZE + SS_HEADER_SIZE + MAC_SIZE


@dataclass(frozen=True)
class Stanza:
    """One recipient's copy of the file key: a key id and the sealed file key."""

    key_id: bytes
    sealed_key: bytes


@dataclass(frozen=True)
class Header:
    """A parsed envelope header."""

    stanzas: tuple[Stanza, ...]
    ss_header: bytes
    mac: bytes

    @property
    def key_ids(self) -> tuple[bytes, ...]:
        """The key ids of every stanza, in order."""
        return tuple(s.key_id for s in self.stanzas)

    def mac_input(self) -> bytes:
        """The bytes the header MAC covers: everything before it."""
        return encode_header_without_mac(self.stanzas, self.ss_header)

    def encode(self) -> bytes:
        """The header as it is written."""
        return self.mac_input() + self.mac


def header_size(stanza_count: int) -> int:
    """The size of a header with this many stanzas."""
    return PREAMBLE_SIZE + 1 + stanza_count * STANZA_SIZE + SS_HEADER_SIZE + MAC_SIZE


def _check_preamble(prefix: bytes) -> int:
    """Check the fixed fields and return the stanza count."""
    if len(prefix) < PREAMBLE_SIZE + 1:
        raise EnvelopeFormatError("it ends before its header does")
    if prefix[:7] != MAGIC:
        raise EnvelopeFormatError("it does not start with the Tipline magic bytes")
    if prefix[7] != VERSION:
        raise EnvelopeFormatError(f"its version {prefix[7]} is not supported (only 1 is)")
    if prefix[8] != 0:
        raise EnvelopeFormatError("its reserved flags are not zero")
    if prefix[9] != CHUNK_LOG2:
        raise EnvelopeFormatError("its chunk size is not the one version 1 uses")
    count = prefix[10]
    if not 1 <= count <= MAX_STANZAS:
        raise EnvelopeFormatError(f"it has {count} recipients; 1 to {MAX_STANZAS} are allowed")
    return count


def header_size_from_prefix(prefix: bytes) -> int:
    """The full header size, from the first 11 bytes of an envelope (checked)."""
    return header_size(_check_preamble(prefix))


def parse_header(data: bytes) -> Header:
    """Parse a header from the start of ``data`` (which may hold more than the header)."""
    count = _check_preamble(data)
    size = header_size(count)
    if len(data) < size:
        raise EnvelopeFormatError("it ends before its header does")
    pos = PREAMBLE_SIZE + 1
    stanzas = []
    for _ in range(count):
        stanzas.append(
            Stanza(data[pos : pos + KEY_ID_SIZE], data[pos + KEY_ID_SIZE : pos + STANZA_SIZE])
        )
        pos += STANZA_SIZE
    if len({s.key_id for s in stanzas}) != count:
        raise EnvelopeFormatError("two of its recipients have the same key id")
    ss_header = data[pos : pos + SS_HEADER_SIZE]
    mac = data[pos + SS_HEADER_SIZE : size]
    return Header(tuple(stanzas), ss_header, mac)


def encode_header_without_mac(stanzas: tuple[Stanza, ...], ss_header: bytes) -> bytes:
    """Preamble, stanza count, stanzas and stream header: what the MAC covers."""
    if not 1 <= len(stanzas) <= MAX_STANZAS:
        raise EnvelopeFormatError(f"an envelope has 1 to {MAX_STANZAS} recipients")
    if len(ss_header) != SS_HEADER_SIZE:
        raise EnvelopeFormatError("the stream header is the wrong size")
    parts = [PREAMBLE, bytes([len(stanzas)])]
    for s in stanzas:
        if len(s.key_id) != KEY_ID_SIZE or len(s.sealed_key) != SEALED_KEY_SIZE:
            raise EnvelopeFormatError("a stanza is the wrong size")
        parts += [s.key_id, s.sealed_key]
    parts.append(ss_header)
    return b"".join(parts)


def ciphertext_size(plaintext_size: int, stanza_count: int) -> int:
    """The exact envelope size for a padded plaintext of ``plaintext_size`` bytes."""
    chunks = max(1, -(-plaintext_size // CHUNK_SIZE))
    return header_size(stanza_count) + plaintext_size + chunks * ABYTES
