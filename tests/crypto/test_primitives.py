"""The primitives' own bounds, and rejection sampling checked on a fixed byte stream."""

from __future__ import annotations

from collections.abc import Iterator

import nacl.bindings as sodium
import pytest

from tipline.crypto import padding, primitives


@pytest.mark.parametrize("size", [16, 64])
def test_ds_domain_length_limits_are_inclusive(size: int) -> None:
    out = primitives.ds(b"d" * size, b"data", 32)
    assert out == sodium.crypto_generichash_blake2b_salt_personal(
        b"data", digest_size=32, key=b"d" * size
    )


@pytest.mark.parametrize("size", [0, 15, 65])
def test_ds_refuses_other_domain_lengths(size: int) -> None:
    with pytest.raises(ValueError, match=r"^domain strings are 16 to 64 bytes$"):
        primitives.ds(b"d" * size, b"data", 32)


def test_every_domain_string_is_a_valid_key() -> None:
    for name in dir(primitives):
        if name.startswith(("DS_", "LABEL_")):
            assert 16 <= len(getattr(primitives, name)) <= 64, name


def test_prf_and_mac_sizes() -> None:
    key = bytes(range(32))
    for size in (16, 24, 32, 64):
        out = primitives.prf(key, b"label", size)
        assert len(out) == size
        assert out == sodium.crypto_generichash_blake2b_salt_personal(
            b"label", digest_size=size, key=key
        )
    assert primitives.mac(key, b"data") == sodium.crypto_generichash_blake2b_salt_personal(
        b"data", digest_size=32, key=key
    )
    for bad in (bytes(31), bytes(33)):
        with pytest.raises(ValueError, match=r"^PRF keys are 32 bytes$"):
            primitives.prf(bad, b"label", 32)


def test_equal() -> None:
    assert primitives.equal(b"abc", b"abc")
    assert not primitives.equal(b"abc", b"abd")


@pytest.mark.parametrize("bound", [0, -1, (1 << 32) + 1])
def test_random_below_refuses_bounds(bound: int) -> None:
    with pytest.raises(ValueError, match=r"^bound must be in 1 \.\. 2\*\*32$"):
        primitives.random_below(bound)


def test_random_below_limits_are_inclusive() -> None:
    assert primitives.random_below(1) == 0
    assert 0 <= primitives.random_below(1 << 32) < 1 << 32


class FixedBytes:
    """A stand-in for the CSPRNG that hands out given 4-byte words, so that which draws
    rejection sampling keeps can be checked exactly (a real CSPRNG cannot be steered)."""

    def __init__(self, words: list[int]) -> None:
        self.words: Iterator[int] = iter(words)
        self.used = 0

    def __call__(self, size: int) -> bytes:
        assert size == 4
        self.used += 1
        return next(self.words).to_bytes(4, "big")


@pytest.mark.parametrize(
    ("bound", "words", "result", "used"),
    [
        # 2**32 % 3 == 1: the one word 0xffffffff is refused, every word below is kept.
        (3, [0xFFFFFFFF, 5], 2, 2),
        (3, [0xFFFFFFFE, 7], 0xFFFFFFFE % 3, 1),
        (3, [0xAAAAAAAB, 7], 0xAAAAAAAB % 3, 1),
        (3, [0x01020304], 0x01020304 % 3, 1),  # big-endian: 0x04030201 % 3 would be 0
        # 2**32 % 10 == 6: the six largest words, from 0xfffffffa, are refused.
        (10, [0xFFFFFFFA, 0xFFFFFFF9, 13], 9, 2),
        (10, [0xFFFFFFFA, 0xFFFFFFFF, 0xFFFFFFFB, 123], 3, 4),
        # a power of two wastes nothing
        (1 << 31, [0xFFFFFFFF], (1 << 31) - 1, 1),
    ],
)
def test_random_below_rejects_exactly_the_biased_tail(
    monkeypatch: pytest.MonkeyPatch, bound: int, words: list[int], result: int, used: int
) -> None:
    fixed = FixedBytes(words)
    monkeypatch.setattr(primitives, "random_bytes", fixed)
    assert primitives.random_below(bound) == result
    assert fixed.used == used


def test_random_bytes_sizes() -> None:
    assert len(primitives.random_bytes(0)) == 0
    assert len(primitives.random_bytes(33)) == 33
    assert primitives.random_bytes(32) != primitives.random_bytes(32)


def test_padme_refuses_negative_lengths() -> None:
    with pytest.raises(ValueError, match=r"^length must not be negative$"):
        padding.padme(-1)
