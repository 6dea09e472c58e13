"""Errors of safe exports. Each docstring is the sentence the journalist sees."""

from __future__ import annotations

from ..errors import DeskError


class ConversionError(DeskError):
    """the attachment could not be made into a safe copy, and nothing was written"""


class SandboxUnavailableError(ConversionError):
    """the desk's sandbox cannot run on this machine (docs/DESK.md lists what it needs)"""


class TimeLimitError(ConversionError):
    """the conversion was stopped because it took too long, and nothing was written"""


class CancelledError(ConversionError):
    """the export was cancelled, and nothing more was written"""

    def __init__(self) -> None:
        super().__init__(None)


class BoundsError(ConversionError):
    """the converter's output broke the desk's limits, so it was thrown away"""


class UnsupportedError(ConversionError):
    """the desk cannot make a safe copy of this kind of file"""
