"""Envelope rules a correct sealer never breaks, so only crafted envelopes reach them: each with
its own error and message, at its limit and one past it (docs/SPEC.md §4)."""

from __future__ import annotations

import io
import json
import traceback
from typing import Any

import nacl.bindings as sodium
import pytest
from nacl.public import PrivateKey, PublicKey, SealedBox

from tipline.crypto import envelope, keys, primitives
from tipline.crypto import format as fmt
from tipline.crypto.errors import EnvelopeContentError, EnvelopeOpenError
from tipline.crypto.inner import MAX_INNER_MANIFEST, MAX_PLAINTEXT, Attachment, Inner
from tipline.crypto.padding import padded_length

PK = bytes(range(32))
TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL


@pytest.fixture(scope="module")
def alice() -> keys.RecipientSecret:
    return keys.RecipientSecret(bytes(range(100, 132)), "Alice")


@pytest.fixture(scope="module")
def bob() -> keys.RecipientSecret:
    return keys.RecipientSecret(bytes(range(50, 82)), "Bob")


def header_for(stanzas: list[fmt.Stanza], file_key: bytes, ss_header: bytes) -> bytes:
    body = fmt.encode_header_without_mac(tuple(stanzas), ss_header)
    mac_key = primitives.prf(file_key, primitives.LABEL_HEADER_MAC, 32)
    return body + primitives.mac(mac_key, body)


def crafted(
    plaintext: bytes,
    recipient: keys.RecipientSecret,
    *,
    pad: bool = True,
    empty_final: bool = False,
) -> bytes:
    """An envelope around any plaintext, written from the spec with libsodium directly; with
    ``empty_final``, its chunks all tagged MESSAGE and an empty FINAL chunk after them."""
    if pad:
        plaintext += bytes(padded_length(len(plaintext)) - len(plaintext))
    file_key = bytes(range(7, 39))
    payload_key = primitives.prf(file_key, primitives.LABEL_PAYLOAD_KEY, 32)
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    ss_header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, payload_key)
    pk = recipient.public.public_key
    stanza = fmt.Stanza(keys.key_id(pk), SealedBox(PublicKey(pk)).encrypt(file_key))
    out = [header_for([stanza], file_key, ss_header)]
    pieces = [plaintext[i : i + fmt.CHUNK_SIZE] for i in range(0, len(plaintext), fmt.CHUNK_SIZE)]
    if empty_final:
        pieces.append(b"")
    for i, piece in enumerate(pieces or [b""]):
        ad = fmt.PREAMBLE + ss_header if i == 0 else None
        tag = TAG_FINAL if i == len(pieces or [b""]) - 1 else TAG_MESSAGE
        out.append(sodium.crypto_secretstream_xchacha20poly1305_push(state, piece, ad, tag))
    return b"".join(out)


def opened(
    data: bytes, who: keys.RecipientSecret, **kw: Any
) -> tuple[Inner, list[tuple[Attachment, bytes]]]:
    got: list[tuple[Attachment, io.BytesIO]] = []

    def sink(index: int, attachment: Attachment) -> io.BytesIO:
        assert index == len(got)
        got.append((attachment, io.BytesIO()))
        return got[-1][1]

    inner = envelope.open_envelope(io.BytesIO(data), [who.secret_key], sink, **kw)
    return inner, [(a, f.getvalue()) for a, f in got]


def content_error(data: bytes, who: keys.RecipientSecret) -> str:
    with pytest.raises(EnvelopeContentError) as info:
        opened(data, who)
    return str(info.value.detail)


def manifest(inner: Inner) -> bytes:
    raw = inner.encode()
    return len(raw).to_bytes(4, "big") + raw


def test_crafted_envelopes_open(alice: keys.RecipientSecret) -> None:
    inner = Inner("submission", "browser", "hi", PK, (Attachment("a", 3),))
    got, files = opened(crafted(manifest(inner) + b"abc", alice), alice)
    assert got == inner
    assert files == [(Attachment("a", 3), b"abc")]  # the sink is told which attachment


def test_inner_manifest_length_limits(alice: keys.RecipientSecret) -> None:
    message = "the inner manifest length must be 1 to 1048576"
    assert content_error(crafted(bytes(4), alice), alice) == message
    over = (MAX_INNER_MANIFEST + 1).to_bytes(4, "big")
    assert content_error(crafted(over, alice), alice) == message
    assert content_error(crafted((0xFFFFFFFF).to_bytes(4, "big"), alice), alice) == message
    # one byte is a length the rule allows: what refuses it is the JSON parser
    assert content_error(crafted(b"\x00\x00\x00\x01{", alice), alice) == (
        "inner manifest is not valid JSON"
    )
    # the length prefix is big-endian
    raw = Inner("reply", "desk", "x").encode()
    assert len(raw) < 256
    assert content_error(crafted(bytes([len(raw), 0, 0, 0]) + raw, alice), alice) == message


def test_inner_manifest_of_the_largest_length_opens(alice: keys.RecipientSecret) -> None:
    base = len(Inner("reply", "desk", "").encode())
    room = MAX_INNER_MANIFEST - base
    inner = Inner("reply", "desk", "\x01" * (room // 6) + "a" * (room % 6))
    assert len(inner.encode()) == MAX_INNER_MANIFEST
    assert opened(crafted(manifest(inner), alice), alice)[0] == inner


def test_plaintext_shorter_than_it_says(alice: keys.RecipientSecret) -> None:
    inner = Inner("reply", "desk", "", None, (Attachment("a", 10_000),))
    assert content_error(crafted(manifest(inner) + b"x" * 10, alice, pad=False), alice) == (
        "the plaintext is shorter than it says"
    )
    assert content_error(crafted(b"\x00\x00", alice, pad=False), alice) == (
        "the plaintext is shorter than it says"
    )


def test_padding_rules(alice: keys.RecipientSecret) -> None:
    body = manifest(Inner("reply", "desk", "x"))
    padded = body + bytes(padded_length(len(body)) - len(body))
    assert opened(crafted(padded, alice, pad=False), alice)[0].message == "x"
    for pos in (len(body), len(padded) - 1):
        bad = bytearray(padded)
        bad[pos] = 1
        assert content_error(crafted(bytes(bad), alice, pad=False), alice) == (
            "the padding is not zero"
        )
    assert content_error(crafted(padded + b"\x00", alice, pad=False), alice) == (
        "the plaintext is longer than its padded length"
    )
    assert content_error(crafted(padded[:-1], alice, pad=False), alice) == (
        "the plaintext is shorter than it says"
    )


def test_attachment_total_limit(alice: keys.RecipientSecret) -> None:
    def total_with(size: int) -> tuple[Inner, int]:
        inner = Inner("reply", "desk", "", None, (Attachment("a", size),))
        return inner, 4 + len(inner.encode()) + size

    inner, length = total_with(MAX_PLAINTEXT)
    over = MAX_PLAINTEXT - (length - MAX_PLAINTEXT) + 1
    inner, length = total_with(over)
    assert length == MAX_PLAINTEXT + 1
    assert content_error(crafted(manifest(inner), alice, pad=False), alice) == (
        "the attachments are larger than the format allows"
    )
    inner, length = total_with(over - 1)
    assert length == MAX_PLAINTEXT  # allowed: what refuses it is the missing attachment
    assert content_error(crafted(manifest(inner), alice, pad=False), alice) == (
        "the plaintext is shorter than it says"
    )


class Untouchable:
    """A source that must never be read."""

    def read(self, size: int = -1, /) -> bytes:
        raise AssertionError("read")


def test_seal_total_limit(alice: keys.RecipientSecret) -> None:
    pk = [alice.public.public_key]
    over = Inner("reply", "desk", "", None, (Attachment("a", MAX_PLAINTEXT),))
    out = io.BytesIO()
    with pytest.raises(EnvelopeContentError) as info:
        envelope.seal(out, pk, over, [Untouchable()])
    assert info.value.detail == "the submission is too large"
    assert out.getvalue() == b""  # refused before a byte is written
    exact = Inner(
        "reply",
        "desk",
        "",
        None,
        (
            Attachment(
                "a",
                MAX_PLAINTEXT
                - 4
                - len(Inner("reply", "desk", "", None, (Attachment("a", MAX_PLAINTEXT),)).encode()),
            ),
        ),
    )
    assert exact.content_length() == MAX_PLAINTEXT
    with pytest.raises(AssertionError, match=r"^read$"):  # accepted: it gets as far as reading
        envelope.seal(io.BytesIO(), pk, exact, [Untouchable()])


def test_seal_messages(alice: keys.RecipientSecret) -> None:
    pk = [alice.public.public_key]
    inner = Inner("reply", "desk", "", None, (Attachment("doc.pdf", 3),))
    with pytest.raises(ValueError, match=r"^one source per attachment$"):
        envelope.seal(io.BytesIO(), pk, inner, [])
    with pytest.raises(ValueError, match=r"^one source per attachment$"):
        envelope.seal(io.BytesIO(), pk, inner, [io.BytesIO(b"abc")] * 2)
    with pytest.raises(ValueError, match=r"^attachment 'doc.pdf' is shorter than announced$"):
        envelope.seal(io.BytesIO(), pk, inner, [io.BytesIO(b"ab")])
    with pytest.raises(ValueError, match=r"^attachment 'doc.pdf' is longer than announced$"):
        envelope.seal(io.BytesIO(), pk, inner, [io.BytesIO(b"abcd")])
    with pytest.raises(ValueError, match=r"^a recipient is listed twice$"):
        envelope.seal(io.BytesIO(), pk * 2, Inner("reply", "desk"))


class Pieces:
    """A reader that returns at most ``step`` bytes per read, and counts its reads."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.pos, self.step = data, 0, step

    def read(self, n: int = -1, /) -> bytes:
        n = min(self.step, len(self.data) - self.pos if n < 0 else n)
        out = self.data[self.pos : self.pos + n]
        self.pos += len(out)
        return out


@pytest.mark.parametrize("step", [1, 7, 100, 150])
def test_header_read_in_short_pieces(alice: keys.RecipientSecret, step: int) -> None:
    inner = Inner("submission", "browser", "hi", PK, (Attachment("a", 5),))
    out = io.BytesIO()
    envelope.seal(out, [alice.public.public_key], inner, [io.BytesIO(b"hello")])
    src = Pieces(out.getvalue(), step)
    assert envelope.open_envelope(src, [alice.secret_key]) == inner
    # rewrap reads the header the same way and copies the rest unread
    src, dst = Pieces(out.getvalue(), step), io.BytesIO()
    envelope.rewrap(src, dst, [alice.secret_key], [alice.public.public_key])
    assert dst.getvalue()[fmt.header_size(1) :] == out.getvalue()[fmt.header_size(1) :]
    assert envelope.open_envelope(io.BytesIO(dst.getvalue()), [alice.secret_key]) == inner


def test_a_stanza_that_does_not_open_is_skipped(
    alice: keys.RecipientSecret, bob: keys.RecipientSecret
) -> None:
    # The first stanza names Alice's key id but holds garbage (anyone can write a stanza);
    # the header MAC is right, so the second stanza, Bob's, must still be tried.
    good = crafted(manifest(Inner("reply", "desk", "for bob")), bob)
    header = fmt.parse_header(good)
    file_key = SealedBox(PrivateKey(bob.secret_key)).decrypt(header.stanzas[0].sealed_key)
    fake = fmt.Stanza(alice.public.key_id, bytes(fmt.SEALED_KEY_SIZE))
    new_header = header_for([fake, header.stanzas[0]], file_key, header.ss_header)
    data = new_header + good[fmt.header_size(1) :]
    got = envelope.open_envelope(io.BytesIO(data), [alice.secret_key, bob.secret_key])
    assert got.message == "for bob"
    with pytest.raises(EnvelopeOpenError):
        envelope.open_envelope(io.BytesIO(data), [alice.secret_key])


def test_open_errors_say_nothing_more() -> None:
    assert str(EnvelopeOpenError()) == (
        "the envelope could not be opened: it is damaged, truncated, or not sealed to any of "
        "your keys"
    )
    assert EnvelopeOpenError().detail is None


def test_inner_json_survives_the_trip(alice: keys.RecipientSecret) -> None:
    inner = Inner("submission", "server", "caf\u00e9", PK, (Attachment("\u00e9", 0, "a/b"),))
    got, files = opened(crafted(manifest(inner), alice), alice)
    assert json.loads(got.encode()) == json.loads(inner.encode())
    assert files == [(Attachment("\u00e9", 0, "a/b"), b"")]


@pytest.mark.parametrize("read_ahead", [False, True])
def test_an_empty_final_chunk_is_refused(alice: keys.RecipientSecret, read_ahead: bool) -> None:
    # A plaintext of whole chunks ends with a full FINAL chunk (SPEC §4.3): an empty chunk after
    # it, though it authenticates, is refused, where it could be a truncation point.
    target = 2 * fmt.CHUNK_SIZE  # a Padmé length: no padding, FINAL on a full chunk
    size = target - len(manifest(Inner("reply", "desk", "", None, (Attachment("a", 100000),))))
    inner = Inner("reply", "desk", "", None, (Attachment("a", size),))
    whole = manifest(inner) + b"a" * size
    assert len(whole) == padded_length(len(whole)) == target
    good = crafted(whole, alice, pad=False)
    assert opened(good, alice, read_ahead=read_ahead)[1] == [(Attachment("a", size), b"a" * size)]
    bad = crafted(whole, alice, pad=False, empty_final=True)
    assert len(bad) == len(good) + fmt.ABYTES
    with pytest.raises(EnvelopeOpenError) as info:
        opened(bad, alice, read_ahead=read_ahead)
    assert "check: chunk-auth" in (traceback.extract_tb(info.value.__traceback__)[-1].line or "")


def test_the_chunk_writer_holds_the_sealer_to_its_announced_length() -> None:
    # seal() checks every source's length first; the writer checks again, as its last guard.
    over = envelope._ChunkWriter(io.BytesIO(), bytes(32), 10)
    with pytest.raises(ValueError, match=r"^more plaintext than announced$"):
        over.write(b"x" * 11)
        over.close()
    under = envelope._ChunkWriter(io.BytesIO(), bytes(32), 10)
    under.write(b"x" * 9)
    with pytest.raises(ValueError, match=r"^less plaintext than announced$"):
        under.close()
    out = io.BytesIO()
    exact = envelope._ChunkWriter(out, bytes(32), fmt.CHUNK_SIZE + 1)
    exact.write(b"y" * fmt.CHUNK_SIZE)
    assert len(out.getvalue()) == fmt.CHUNK_SIZE + fmt.ABYTES  # a full chunk goes out at once
    exact.write(b"y")
    exact.close()
    assert len(out.getvalue()) == fmt.CHUNK_SIZE + 1 + 2 * fmt.ABYTES
