"""Padmé padding (Nikitin et al., PETS 2019), docs/SPEC.md §4.5.

Padmé rounds a length L to a value with only O(log log L) significant bits, so an observer
of ciphertext sizes learns little about the plaintext, at an overhead of at most 12 %.
"""

from __future__ import annotations

MIN_PLAINTEXT = 4096


def padme(length: int) -> int:
    """Round ``length`` up to the nearest Padmé length."""
    if length < 0:
        raise ValueError("length must not be negative")
    if length < 2:
        return length
    e = length.bit_length() - 1  # floor(log2 L)
    s = e.bit_length()  # floor(log2 E) + 1
    z = e - s
    step = 1 << z
    return -(-length // step) * step


def padded_length(length: int) -> int:
    """The total plaintext length an envelope carries for ``length`` bytes of content.

    The floor makes every short message the same size, where Padmé alone would still leak it.
    """
    return padme(max(length, MIN_PLAINTEXT))
