"""Shared fixtures: the word list and a few fixed keys."""

from __future__ import annotations

import pytest

from tipline.crypto import keys
from tipline.crypto.codename import Wordlist
from tipline.wordlist import load_wordlist


@pytest.fixture(scope="session")
def wordlist() -> Wordlist:
    return load_wordlist()


@pytest.fixture
def alice() -> keys.RecipientSecret:
    return keys.RecipientSecret.generate("Alice")


@pytest.fixture
def bob() -> keys.RecipientSecret:
    return keys.RecipientSecret.generate("Bob")
