"""Codenames: generation, normalisation and the derived login token and reply keypair
(docs/SPEC.md §5).

A codename is seven words from the EFF large list, chosen by the machine: about 90.5 bits. The
derivations are fast BLAKE2b on purpose; the entropy is the protection (SPEC §5.3 says why).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from nacl.public import PrivateKey

from . import primitives
from .errors import CodenameError, WordlistError

WORDLIST_SIZE = 7776
WORDLIST_DIGEST = "016da683da6f5786041cd3f55245cb28c210d83d021163358aaefa5b47265005"
CODENAME_WORDS = 7
MAX_CODENAME_WORDS = 12
MAX_CODENAME_BYTES = 256


def wordlist_digest(words: Sequence[str]) -> str:
    """The digest that identifies a word list (hex)."""
    return primitives.ds(primitives.DS_WORDLIST, "\n".join(words).encode("utf-8"), 32).hex()


@dataclass(frozen=True)
class Wordlist:
    """The checked codename word list."""

    words: tuple[str, ...]
    index: frozenset[str]

    @classmethod
    def from_text(cls, text: str) -> Wordlist:
        """Parse the list (one word per line) and check that it is exactly the expected one."""
        words = tuple(text.splitlines())
        if len(words) != WORDLIST_SIZE or wordlist_digest(words) != WORDLIST_DIGEST:
            raise WordlistError()
        return cls(words, frozenset(words))


@dataclass(frozen=True, repr=False)
class Derived:
    """What a codename yields. ``repr`` hides the secrets so they never reach a log."""

    login_token: bytes
    token_hash: bytes
    reply_secret_key: bytes
    reply_public_key: bytes

    def __repr__(self) -> str:
        return "Derived(<secret>)"


def generate(wordlist: Wordlist, words: int = CODENAME_WORDS) -> str:
    """A new codename: ``words`` words chosen uniformly and independently."""
    if not CODENAME_WORDS <= words <= MAX_CODENAME_WORDS:
        raise CodenameError(f"a codename has {CODENAME_WORDS} to {MAX_CODENAME_WORDS} words")
    return " ".join(wordlist.words[primitives.random_below(WORDLIST_SIZE)] for _ in range(words))


def normalize(wordlist: Wordlist, typed: str) -> str:
    """What the source typed, in the one form every derivation uses; refuses anything else.

    The messages never repeat the words typed: a codename must not end up in a log.
    """
    if len(typed) > 4 * MAX_CODENAME_BYTES:
        raise CodenameError("it is too long")
    words = unicodedata.normalize("NFKC", typed).lower().split()
    if not CODENAME_WORDS <= len(words) <= MAX_CODENAME_WORDS:
        raise CodenameError(f"a codename has {CODENAME_WORDS} to {MAX_CODENAME_WORDS} words")
    if any(w not in wordlist.index for w in words):
        raise CodenameError("one of the words is not in the codename word list")
    text = " ".join(words)
    if len(text.encode("utf-8")) > MAX_CODENAME_BYTES:
        raise CodenameError("it is too long")
    return text


def login_token_hash(login_token: bytes) -> bytes:
    """What the server stores of a login token: a hash the token cannot be recovered from."""
    if len(login_token) != 32:
        raise CodenameError("a login token is 32 bytes")
    return primitives.ds(primitives.DS_TOKEN_HASH, login_token, 32)


def derive(normalized: str) -> Derived:
    """Derive the login token, its stored hash and the reply keypair from a normalised codename."""
    data = normalized.encode("utf-8")
    token = primitives.ds(primitives.DS_LOGIN_TOKEN, data, 32)
    seed = primitives.ds(primitives.DS_REPLY_SEED, data, 32)
    secret = PrivateKey.from_seed(seed)  # crypto_box_seed_keypair
    return Derived(token, login_token_hash(token), bytes(secret), bytes(secret.public_key))
