"""Padmé (docs/SPEC.md §4.5)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tipline.crypto.padding import MIN_PLAINTEXT, padded_length, padme


def test_known_values() -> None:
    # Worked by hand from the paper's definition: E=floor(log2 L), S=floor(log2 E)+1, z=E-S.
    assert [padme(n) for n in (0, 1, 2, 3, 9, 10, 100)] == [0, 1, 2, 3, 10, 10, 104]
    assert padme(1_000_000) == 1_015_808  # E=19, S=5, z=14: multiples of 16384
    assert padme(2**40 + 1) == 2**40 + 2**34


@given(st.integers(min_value=2, max_value=2**48))
def test_bounds(length: int) -> None:
    padded = padme(length)
    assert length <= padded <= length * 1.12 + 1
    assert padme(padded) == padded


@given(st.integers(min_value=0, max_value=2**20))
def test_floor(length: int) -> None:
    assert padded_length(length) >= max(length, MIN_PLAINTEXT)
    if length <= MIN_PLAINTEXT:
        assert padded_length(length) == MIN_PLAINTEXT
