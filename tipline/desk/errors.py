"""The desk's errors. Each docstring is the one-line message the journalist sees."""

from __future__ import annotations

from ..crypto.errors import TiplineError


class DeskError(TiplineError):
    """the desk could not do that"""


class VaultMissingError(DeskError):
    """there is no vault here (create one with `tipline-desk init`)"""


class VaultExistsError(DeskError):
    """a vault already exists here"""


class VaultDamagedError(DeskError):
    """a vault file is damaged or was changed outside the desk"""


class VaultBusyError(DeskError):
    """the vault is open in another tipline-desk (close it first)"""


class NotFoundError(DeskError):
    """not found"""

    @property
    def message(self) -> str:
        """The detail alone ("no item 1234") reads better than a prefix."""
        return self.detail or super().message


class AmbiguousError(DeskError):
    """that prefix matches more than one entry; type more of it"""


class KeyringError(DeskError):
    """the key operation was refused"""


class ImportRefusedError(DeskError):
    """the bundle could not be imported"""


class ExportRefusedError(DeskError):
    """nothing was exported"""


class BackupError(DeskError):
    """the backup could not be read or restored"""


class UsageError(DeskError):
    """that input is not valid"""

    @property
    def message(self) -> str:
        """The detail says what was wrong with the input; the prefix adds nothing."""
        return self.detail or super().message
