"""Envelope v1: round trips, bounded memory, re-wrapping and every refusal (docs/SPEC.md §4)."""

from __future__ import annotations

import io
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tipline.crypto import envelope, keys
from tipline.crypto import format as fmt
from tipline.crypto.errors import EnvelopeContentError, EnvelopeFormatError, EnvelopeOpenError
from tipline.crypto.inner import Attachment, Inner
from tipline.crypto.padding import padded_length

REPLY_PK = bytes(32)


def seal_bytes(recipients: list[keys.RecipientSecret], inner: Inner, blobs: list[bytes]) -> bytes:
    out = io.BytesIO()
    size = envelope.seal(
        out, [r.public.public_key for r in recipients], inner, [io.BytesIO(b) for b in blobs]
    )
    assert size == len(out.getvalue())
    return out.getvalue()


def open_bytes(data: bytes, identity: keys.RecipientSecret) -> tuple[Inner, list[bytes]]:
    outputs: list[io.BytesIO] = []

    def sink(index: int, attachment: Attachment) -> io.BytesIO:
        outputs.append(io.BytesIO())
        return outputs[-1]

    inner = envelope.open_envelope(io.BytesIO(data), [identity.secret_key], sink)
    return inner, [o.getvalue() for o in outputs]


def submission(blobs: list[bytes], message: str = "hello") -> Inner:
    return Inner(
        "submission",
        "server",
        message,
        REPLY_PK,
        tuple(Attachment(f"file{i}", len(b)) for i, b in enumerate(blobs)),
    )


@settings(max_examples=25, deadline=None)
@given(
    message=st.text(max_size=300),
    blobs=st.lists(st.binary(max_size=3 * fmt.CHUNK_SIZE + 5), max_size=3),
)
def test_round_trip(message: str, blobs: list[bytes]) -> None:
    alice = keys.RecipientSecret(bytes(range(32)), "Alice")
    inner = submission(blobs, message)
    data = seal_bytes([alice], inner, blobs)
    got, outputs = open_bytes(data, alice)
    assert got == inner
    assert outputs == blobs
    length = inner.content_length()
    assert len(data) == fmt.ciphertext_size(padded_length(length), 1)


@pytest.mark.parametrize(
    ("extra", "chunks", "last"),
    [
        (-1, 16, fmt.CHUNK_SIZE),  # one byte of padding: 16 full chunks, FINAL on a full one
        (0, 16, fmt.CHUNK_SIZE),  # no padding at all: the content ends with the FINAL full chunk
        (1, 17, fmt.CHUNK_SIZE // 2),  # one byte over: Padmé's next length, half a chunk more
    ],
)
def test_chunk_boundaries(alice: keys.RecipientSecret, extra: int, chunks: int, last: int) -> None:
    target = 1 << 20  # a Padmé length: exactly 16 chunks
    # The inner manifest names the attachment's size, so measure it with a size of as many
    # digits (every size here has 7) and make the content exactly target + extra bytes.
    base = submission([b"\x07" * target], "").content_length() - target
    blob = b"\x07" * (target - base + extra)
    inner = submission([blob], "")
    assert inner.content_length() == target + extra
    data = seal_bytes([alice], inner, [blob])
    payload = len(data) - fmt.header_size(1)
    full = fmt.CHUNK_SIZE + fmt.ABYTES
    assert -(-payload // full) == chunks
    assert payload - (chunks - 1) * full - fmt.ABYTES == last  # the FINAL chunk's plaintext
    assert open_bytes(data, alice)[1] == [blob]


def test_every_recipient_opens(alice: keys.RecipientSecret, bob: keys.RecipientSecret) -> None:
    data = seal_bytes([alice, bob], submission([b"x"]), [b"x"])
    assert open_bytes(data, alice)[1] == open_bytes(data, bob)[1] == [b"x"]
    assert fmt.parse_header(data).key_ids == (alice.public.key_id, bob.public.key_id)


def test_no_plaintext_in_ciphertext(alice: keys.RecipientSecret) -> None:
    secret = b"the informant is in the third cell" * 100
    data = seal_bytes([alice], submission([secret], "meet at the camp"), [secret])
    assert b"informant" not in data and b"camp" not in data and b"file0" not in data


class Endless(io.RawIOBase):
    """A readable of ``size`` bytes that never exists in memory whole."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return b"\x5a" * n


class Discard(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        return len(data)


def test_memory_stays_bounded(alice: keys.RecipientSecret, tmp_path) -> None:  # type: ignore[no-untyped-def]
    size = 48 << 20
    inner = Inner("submission", "server", "", REPLY_PK, (Attachment("big", size),))
    path = tmp_path / "big.env"
    tracemalloc.start()
    with path.open("wb") as out:
        envelope.seal(out, [alice.public.public_key], inner, [Endless(size)])
    _, seal_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    with path.open("rb") as src:
        envelope.open_envelope(src, [alice.secret_key], lambda i, a: Discard())  # type: ignore[arg-type,return-value]
    _, open_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert seal_peak < 2 << 20, seal_peak
    assert open_peak < 2 << 20, open_peak


def test_rewrap_changes_only_stanzas(
    alice: keys.RecipientSecret, bob: keys.RecipientSecret
) -> None:
    blob = bytes(range(256)) * 900
    data = seal_bytes([alice], submission([blob]), [blob])
    out = io.BytesIO()
    envelope.rewrap(io.BytesIO(data), out, [alice.secret_key], [bob.public.public_key])
    new = out.getvalue()
    old_header, new_header = fmt.parse_header(data), fmt.parse_header(new)
    assert new[fmt.header_size(1) :] == data[fmt.header_size(1) :]
    assert new_header.ss_header == old_header.ss_header
    assert new_header.key_ids == (bob.public.key_id,)
    assert open_bytes(new, bob)[1] == [blob]
    with pytest.raises(EnvelopeOpenError):
        open_bytes(new, alice)


def test_rewrap_needs_a_key(alice: keys.RecipientSecret, bob: keys.RecipientSecret) -> None:
    data = seal_bytes([alice], submission([]), [])
    with pytest.raises(EnvelopeOpenError):
        envelope.rewrap(io.BytesIO(data), io.BytesIO(), [bob.secret_key], [bob.public.public_key])


def test_seal_refuses_wrong_sizes(alice: keys.RecipientSecret) -> None:
    with pytest.raises(ValueError, match="shorter"):
        seal_bytes([alice], submission([b"abc"]), [b"ab"])
    with pytest.raises(ValueError, match="longer"):
        seal_bytes([alice], submission([b"abc"]), [b"abcd"])


def test_seal_refuses_duplicate_and_too_many_recipients(alice: keys.RecipientSecret) -> None:
    with pytest.raises(ValueError):
        seal_bytes([alice, alice], submission([]), [])
    many = [keys.RecipientSecret.generate(f"k{i}") for i in range(fmt.MAX_STANZAS + 1)]
    with pytest.raises(EnvelopeFormatError):
        seal_bytes(many, submission([]), [])


def test_header_parse_for_server(alice: keys.RecipientSecret) -> None:
    data = seal_bytes([alice], submission([]), [])
    assert fmt.header_size_from_prefix(data[:11]) == fmt.header_size(1)
    with pytest.raises(EnvelopeFormatError, match="ends before"):
        fmt.header_size_from_prefix(data[:5])
    dup = data[:10] + b"\x02" + data[11:107] * 2 + data[107:]
    with pytest.raises(EnvelopeFormatError, match="same key id"):
        fmt.parse_header(dup)


def test_empty_input_is_a_format_error(alice: keys.RecipientSecret) -> None:
    with pytest.raises(EnvelopeFormatError):
        envelope.open_envelope(io.BytesIO(b""), [alice.secret_key])


def test_inner_checks() -> None:
    with pytest.raises(EnvelopeContentError):
        Inner("reply", "desk", "x", REPLY_PK)  # replies carry no reply key
    with pytest.raises(EnvelopeContentError):
        Inner("submission", "browser", "x", None)
    with pytest.raises(EnvelopeContentError):
        Inner("submission", "nobody", "x", REPLY_PK)
    with pytest.raises(EnvelopeContentError):
        Inner("reply", "desk", "\ud800")
    with pytest.raises(EnvelopeContentError):
        Attachment("", 1)
    with pytest.raises(EnvelopeContentError):
        Attachment("x" * 256, 1)
    with pytest.raises(EnvelopeContentError):
        Attachment("a", -1)
    with pytest.raises(EnvelopeContentError):
        Attachment("a", 1, "text/\x1b[31m")
