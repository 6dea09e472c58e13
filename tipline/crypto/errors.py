"""The one error root of Tipline, and the crypto core's errors.

Each subclass's docstring is the message a user sees, so it is written for a person, not a
programmer. No message ever includes secret material or bytes from a ciphertext.
"""

from __future__ import annotations


class TiplineError(Exception):
    """something went wrong"""

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The user-facing text: the class docstring, with the detail when there is one."""
        base = " ".join((self.__doc__ or "").split())
        return f"{base}: {self.detail}" if self.detail else base


class EnvelopeFormatError(TiplineError):
    """this is not a Tipline envelope this version can read"""


class EnvelopeOpenError(TiplineError):
    """the envelope could not be opened: it is damaged, truncated,
    or not sealed to any of your keys"""

    def __init__(self) -> None:
        # Deliberately no detail: every failure after the header parses looks the same.
        super().__init__(None)


class EnvelopeContentError(TiplineError):
    """the envelope opened, but what is inside breaks the format"""


class KeyFileError(TiplineError):
    """this key file is not valid"""


class LockedSecretError(TiplineError):
    """the passphrase is wrong, or the locked file was changed"""


class ManifestError(TiplineError):
    """the key manifest was refused"""


class KeyRequestError(TiplineError):
    """the key request was refused"""


class CodenameError(TiplineError):
    """that is not a valid codename"""


class WordlistError(TiplineError):
    """the codename word list is not the one this version of Tipline expects"""


class SpoolError(TiplineError):
    """a temporary upload file could not be read back"""
