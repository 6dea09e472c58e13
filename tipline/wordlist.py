"""Loads the codename word list from the package that ships it (docs/SPEC.md §5.1).

It lives outside ``tipline.crypto`` because it reads a file; the crypto core checks the digest.
"""

from __future__ import annotations

import functools
from importlib import resources

from .crypto.codename import Wordlist
from .crypto.errors import WordlistError

PACKAGE, RESOURCE = "xkcdpass", "static/eff-long"


def wordlist_text() -> str:
    """The word list file's text, as shipped by xkcdpass."""
    try:
        return resources.files(PACKAGE).joinpath(RESOURCE).read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError, UnicodeDecodeError) as exc:
        raise WordlistError("the xkcdpass package with the EFF list is not installed") from exc


@functools.cache
def load_wordlist() -> Wordlist:
    """The checked word list, loaded once per process."""
    return Wordlist.from_text(wordlist_text())
