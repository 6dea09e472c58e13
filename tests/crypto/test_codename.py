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


def test_wordlist_from_text_keeps_the_words(wordlist: codename.Wordlist) -> None:
    text = wordlist_text()
    assert codename.wordlist_digest(text.splitlines()) == codename.WORDLIST_DIGEST
    parsed = codename.Wordlist.from_text(text)
    assert parsed.words == tuple(text.splitlines()) == wordlist.words
    assert parsed.index == frozenset(parsed.words)
    assert parsed.words[0] == "abacus" and "zoom" in parsed.index


def test_wordlist_error_says_what_is_wrong() -> None:
    with pytest.raises(WordlistError) as info:
        codename.Wordlist.from_text("abacus\n")
    assert str(info.value) == (
        "the codename word list is not the one this version of Tipline expects"
    )


@pytest.mark.parametrize("words", [7, 12])
def test_generate_at_each_limit(wordlist: codename.Wordlist, words: int) -> None:
    name = codename.generate(wordlist, words)
    assert len(name.split(" ")) == words
    assert codename.normalize(wordlist, name) == name


@pytest.mark.parametrize("words", [0, 6, 13])
def test_generate_refuses_past_each_limit(wordlist: codename.Wordlist, words: int) -> None:
    with pytest.raises(CodenameError) as info:
        codename.generate(wordlist, words)
    assert info.value.detail == "a codename has 7 to 12 words"


NAME = "abacus abdomen abdominal abide abiding ability ablaze"


def test_normalize_length_limit_is_on_what_was_typed(wordlist: codename.Wordlist) -> None:
    limit = 4 * codename.MAX_CODENAME_BYTES
    at_limit = NAME + " " * (limit - len(NAME))  # spaces count: a paste of junk is refused
    assert len(at_limit) == limit
    assert codename.normalize(wordlist, at_limit) == NAME
    with pytest.raises(CodenameError) as info:
        codename.normalize(wordlist, at_limit + " ")
    assert info.value.detail == "it is too long"


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        (" ".join(NAME.split()[:6]), "a codename has 7 to 12 words"),
        (" ".join([NAME] * 2), "a codename has 7 to 12 words"),  # 14
        ("", "a codename has 7 to 12 words"),
        (NAME + " zzzz", "one of the words is not in the codename word list"),
    ],
)
def test_normalize_messages(wordlist: codename.Wordlist, typed: str, message: str) -> None:
    with pytest.raises(CodenameError) as info:
        codename.normalize(wordlist, typed)
    assert info.value.detail == message
    assert str(info.value) == f"that is not a valid codename: {message}"


def test_normalize_accepts_twelve_words(wordlist: codename.Wordlist) -> None:
    twelve = " ".join((NAME.split() * 2)[:12])
    assert codename.normalize(wordlist, twelve.upper()) == twelve


def test_login_token_hash_wants_32_bytes() -> None:
    for size in (0, 31, 33):
        with pytest.raises(CodenameError) as info:
            codename.login_token_hash(bytes(size))
        assert info.value.detail == "a login token is 32 bytes"
    assert len(codename.login_token_hash(bytes(32))) == 32


def test_derived_reply_keypair_is_a_keypair() -> None:
    from nacl.public import PrivateKey

    d = codename.derive(NAME)
    assert isinstance(d.reply_secret_key, bytes) and len(d.reply_secret_key) == 32
    assert bytes(PrivateKey(d.reply_secret_key).public_key) == d.reply_public_key
    assert len(d.login_token) == 32 and len(d.token_hash) == 32
