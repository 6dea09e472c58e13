"""The in-place secretstream puller (tipline/crypto/stream.py): ``pull`` (the desk's sealed
files use it) and ``pull_at`` (the envelope reader's), each bound at its edge."""

from __future__ import annotations

from collections.abc import Sequence

import nacl.bindings as sodium
import pytest

from tipline.crypto.stream import ABYTES, Puller

KEY = bytes(range(32))
TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
CHUNK = 64


def pushed(chunks: Sequence[tuple[bytes, bytes | None, int]]) -> tuple[bytes, list[bytes]]:
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, KEY)
    return header, [
        sodium.crypto_secretstream_xchacha20poly1305_push(state, m, ad, tag)
        for m, ad, tag in chunks
    ]


def test_abytes() -> None:
    assert ABYTES == 17


def test_pull_decrypts_full_short_and_empty_chunks_in_place() -> None:
    header, cts = pushed(
        [(b"a" * CHUNK, b"ad", TAG_MESSAGE), (b"b" * 10, None, TAG_MESSAGE), (b"", None, TAG_FINAL)]
    )
    puller = Puller(KEY, header, CHUNK)
    assert len(puller.inbuf) == CHUNK + ABYTES  # room for a full chunk and its tag
    got = []
    for ct, ad in zip(cts, (b"ad", None, None), strict=True):
        puller.inbuf[: len(ct)] = ct
        result = puller.pull(len(ct), ad)
        assert result is not None
        view, tag = result
        got.append((bytes(view), tag))
    assert got == [(b"a" * CHUNK, TAG_MESSAGE), (b"b" * 10, TAG_MESSAGE), (b"", TAG_FINAL)]


def test_pull_returns_a_view_the_next_pull_overwrites() -> None:
    header, cts = pushed([(b"1" * 8, None, TAG_MESSAGE), (b"2" * 8, None, TAG_FINAL)])
    puller = Puller(KEY, header, CHUNK)
    puller.inbuf[: len(cts[0])] = cts[0]
    first = puller.pull(len(cts[0]), None)
    assert first is not None and bytes(first[0]) == b"1" * 8
    puller.inbuf[: len(cts[1])] = cts[1]
    assert puller.pull(len(cts[1]), None) is not None
    assert bytes(first[0]) == b"2" * 8


def test_pull_refuses_what_does_not_authenticate() -> None:
    header, cts = pushed([(b"x" * 20, b"ad", TAG_MESSAGE)])
    for size, ad, flip in [
        (len(cts[0]), None, False),
        (len(cts[0]), b"other", False),
        (len(cts[0]), b"ad", True),
        (len(cts[0]) - 1, b"ad", False),
    ]:
        puller = Puller(KEY, header, CHUNK)
        puller.inbuf[: len(cts[0])] = cts[0]
        if flip:
            puller.inbuf[3] ^= 1
        assert puller.pull(size, ad) is None


@pytest.mark.parametrize("size", [-1, 0, ABYTES - 1, CHUNK + ABYTES + 1])
def test_pull_refuses_sizes_out_of_bounds(size: int) -> None:
    header, _ = pushed([])
    assert Puller(KEY, header, CHUNK).pull(size, None) is None


def test_pull_at_bounds_are_inclusive() -> None:
    header, cts = pushed([(b"a" * CHUNK, None, TAG_MESSAGE), (b"", None, TAG_FINAL)])
    src = b"pad" + cts[0] + cts[1]
    puller = Puller(KEY, header, CHUNK)
    dst = bytearray(CHUNK + 5)
    # the output fits exactly at the end of dst
    assert puller.pull_at(src, 3, len(cts[0]), dst, 5, None) == (CHUNK, TAG_MESSAGE)
    assert bytes(dst[5:]) == b"a" * CHUNK
    # an empty FINAL chunk (size == ABYTES) ends src exactly, and needs no room at all
    assert puller.pull_at(src, len(src) - ABYTES, ABYTES, dst, len(dst), None) == (0, TAG_FINAL)


def test_pull_at_refuses_out_of_bounds_input() -> None:
    header, cts = pushed([(b"a" * CHUNK, None, TAG_MESSAGE)])
    src = cts[0]
    dst = bytearray(CHUNK)
    puller = Puller(KEY, header, CHUNK)
    assert puller.pull_at(src, 0, ABYTES - 1, dst, 0, None) is None
    assert puller.pull_at(src + b"x", 0, CHUNK + ABYTES + 1, dst, 0, None) is None
    assert puller.pull_at(src, 1, len(src), dst, 0, None) is None  # runs past src's end
    assert puller.pull_at(src, -1, len(src), dst, 0, None) is None
    assert puller.pull_at(b"x" * 3 + src, 3, len(src), dst, 0, b"ad") is None  # wrong ad
    # nothing was consumed by the refusals: the chunk still opens
    assert puller.pull_at(src, 0, len(src), dst, 0, None) == (CHUNK, TAG_MESSAGE)


@pytest.mark.parametrize("at", [-1, 1, CHUNK + 1])
def test_pull_at_refuses_a_buffer_too_small(at: int) -> None:
    header, cts = pushed([(b"a" * CHUNK, None, TAG_MESSAGE)])
    puller = Puller(KEY, header, CHUNK)
    with pytest.raises(ValueError, match=r"^the output buffer is too small$"):
        puller.pull_at(cts[0], 0, len(cts[0]), bytearray(CHUNK), at, None)


def test_pull_at_never_writes_into_immutable_bytes() -> None:
    header, cts = pushed([(b"a" * 8, None, TAG_MESSAGE)])
    puller = Puller(KEY, header, CHUNK)
    frozen = bytes(8)
    with pytest.raises(BufferError):
        puller.pull_at(cts[0], 0, len(cts[0]), frozen, 0, None)  # type: ignore[arg-type]
    assert frozen == bytes(8)


def test_pull_at_follows_buffers_that_change() -> None:
    chunks = [(bytes([i]) * 16, None, TAG_MESSAGE) for i in range(4)]
    header, cts = pushed(chunks)
    puller = Puller(KEY, header, CHUNK)
    a, b = bytearray(16), bytearray(16)
    for i, ct in enumerate(cts):
        dst = (a, b)[i % 2]
        src = bytearray(ct) if i % 2 else ct  # a new source object every time
        assert puller.pull_at(src, 0, len(ct), dst, 0, None) == (16, TAG_MESSAGE)
        assert bytes(dst) == bytes([i]) * 16


def test_a_bad_stream_header_is_refused() -> None:
    with pytest.raises(ValueError):
        Puller(KEY, bytes(23), CHUNK)


def test_pull_at_never_reads_past_the_end_of_src() -> None:
    # src is a view that ends one byte before the ciphertext does; the byte after it in memory
    # is the ciphertext's last. Reading it would authenticate: the bound must refuse first.
    header, cts = pushed([(b"a" * 8, None, TAG_MESSAGE)])
    memory = b"x" + cts[0]
    src = memoryview(memory)[: len(cts[0])]
    dst = bytearray(8)
    assert Puller(KEY, header, CHUNK).pull_at(src, 1, len(cts[0]), dst, 0, None) is None
    assert dst == bytes(8)
    # positive control: the same bytes inside the view open
    whole = memoryview(memory)
    assert Puller(KEY, header, CHUNK).pull_at(whole, 1, len(cts[0]), dst, 0, None) == (
        8,
        TAG_MESSAGE,
    )
