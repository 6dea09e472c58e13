"""Codenames: generation, normalisation, derivation and the word list (docs/SPEC.md §5)."""

from __future__ import annotations

import collections
import math

import pytest

from tipline.crypto import codename
from tipline.crypto.errors import CodenameError, WordlistError
from tipline.wordlist import wordlist_text


def test_wordlist_is_the_pinned_one(wordlist: codename.Wordlist) -> None:
    assert len(wordlist.words) == codename.WORDLIST_SIZE == len(wordlist.index)
    changed = wordlist_text().replace("abacus", "abacux")
    with pytest.raises(WordlistError):
        codename.Wordlist.from_text(changed)
    with pytest.raises(WordlistError):
        codename.Wordlist.from_text("\n".join(wordlist.words[:-1]))


def test_generate(wordlist: codename.Wordlist) -> None:
    names = [codename.generate(wordlist) for _ in range(200)]
    assert len(set(names)) == 200
    for name in names:
        words = name.split(" ")
        assert len(words) == codename.CODENAME_WORDS
        assert all(w in wordlist.index for w in words)
        assert codename.normalize(wordlist, name) == name
    assert codename.CODENAME_WORDS * math.log2(codename.WORDLIST_SIZE) >= 90


def test_generate_is_not_skewed(wordlist: codename.Wordlist) -> None:
    # 14,000 draws over 7,776 words: each half of the list should get close to half.
    counts = collections.Counter(
        wordlist.words.index(w) < 3888
        for _ in range(2000)
        for w in codename.generate(wordlist).split()
    )
    assert abs(counts[True] - 7000) < 400


def test_normalize(wordlist: codename.Wordlist) -> None:
    name = "abacus abdomen abdominal abide abiding ability ablaze"
    typed = "\tABACUS  Abdomen\u00a0abdominal abide\nabiding ability ablaze  "
    assert codename.normalize(wordlist, typed) == name
    fullwidth = "\uff41\uff42\uff41\uff43\uff55\uff53"  # "abacus", folded by NFKC
    assert codename.normalize(wordlist, f"{fullwidth} {name.split(' ', 1)[1]}") == name


@pytest.mark.parametrize(
    "typed, message",
    [
        ("abacus abdomen abdominal abide abiding ability", "7 to 12 words"),
        (" ".join(["abacus"] * 13), "7 to 12 words"),
        ("abacus abdomen abdominal abide abiding ability zzzz", "not in the codename word list"),
        ("x" * 5000, "too long"),
    ],
)
def test_normalize_refuses(wordlist: codename.Wordlist, typed: str, message: str) -> None:
    with pytest.raises(CodenameError, match=message) as info:
        codename.normalize(wordlist, typed)
    assert "zzzz" not in str(info.value) and "abacus" not in str(info.value)


def test_derivations_are_independent() -> None:
    d = codename.derive("abacus abdomen abdominal abide abiding ability ablaze")
    e = codename.derive("abacus abdomen abdominal abide abiding ability ablaze abacus")
    values = {
        d.login_token,
        d.token_hash,
        d.reply_secret_key,
        d.reply_public_key,
        e.login_token,
        e.token_hash,
    }
    assert len(values) == 6
    assert codename.login_token_hash(d.login_token) == d.token_hash
    assert repr(d) == "Derived(<secret>)"
