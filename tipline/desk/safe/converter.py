"""The converter seam: one small interface for making safe copies, chosen once from configuration.

Two implementations: the desk's own sandboxed pipeline (``own.SandboxConverter``, the default,
Debian packages only) and Dangerzone's command line where it is installed
(``dangerzone.DangerzoneConverter``). ``make_converter`` picks one from ``ConverterConfig``; the
rest of the desk sees only ``Converter``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from ..errors import UsageError
from .pixels import Bounds
from .sniff import Kind

CONVERTERS = ("sandbox", "dangerzone")
MIB = 1 << 20


@dataclass(frozen=True)
class ConverterConfig:
    """How safe copies are made. Read once, from the environment, by ``load_config``."""

    converter: str = "sandbox"
    seconds: float = 300.0  # wall clock for one file (and for each page's OCR)
    memory: int = 3 << 30  # address space per process in the sandbox
    max_original: int = 2 << 30  # the largest original the sandbox takes (it lives in its RAM)
    dpi: int = 150
    ocr_language: str = "eng"
    bounds: Bounds = field(default_factory=Bounds)


def load_config(environ: Mapping[str, str] | None = None) -> ConverterConfig:
    """The converter settings from ``TIPLINE_CONVERTER`` (sandbox or dangerzone),
    ``TIPLINE_CONVERT_SECONDS``, ``TIPLINE_CONVERT_MEMORY_MIB`` and ``TIPLINE_OCR_LANGUAGE``."""
    env = os.environ if environ is None else environ
    converter = env.get("TIPLINE_CONVERTER", "sandbox").strip().lower() or "sandbox"
    if converter not in CONVERTERS:
        raise UsageError(f"TIPLINE_CONVERTER must be one of {', '.join(CONVERTERS)}")
    seconds = _number(env, "TIPLINE_CONVERT_SECONDS", 300, 1, 86_400)
    memory = _number(env, "TIPLINE_CONVERT_MEMORY_MIB", 3072, 256, 1 << 20)
    language = env.get("TIPLINE_OCR_LANGUAGE", "eng").strip() or "eng"
    if not all(part.isalnum() or part == "_" for part in language.split("+")):
        raise UsageError("TIPLINE_OCR_LANGUAGE is Tesseract language names joined by +")
    return ConverterConfig(
        converter=converter, seconds=seconds, memory=int(memory) * MIB, ocr_language=language
    )


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise UsageError(f"{name} must be a number from {low:g} to {high:g}")
    return value


@dataclass
class Job:
    """One attachment to make a copy of.

    ``feed`` writes the original's bytes into the file object it is given (the sandbox's
    standard input), straight from the envelope, and raises if the envelope does not open or
    the bytes are not the ones fingerprinted: the original never touches the disk.
    """

    kind: Kind
    size: int
    feed: Callable[[IO[bytes]], None]
    out: Path  # where the copy is written (a temporary name; the caller renames it)
    workdir: Path  # a private folder for the desk's own intermediate files
    ocr: bool = False
    progress: Callable[[int, int], None] = lambda done, total: None
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class ViewingCopy:
    """A viewing copy that was written: PDF pages, or one PNG."""

    format: str  # "pdf" or "png"
    pages: int
    ocr: bool


@dataclass(frozen=True)
class PublicationCopy:
    """A publication copy that was written, and the metadata fields found before and after."""

    found: tuple[str, ...]
    left: tuple[str, ...]


class Converter(Protocol):
    """Makes safe copies of hostile files."""

    name: str

    def check(self) -> None:
        """Raise one clear sentence if this converter cannot run here."""

    def viewing_copy(self, job: Job) -> ViewingCopy:
        """Render ``job`` to pixels in isolation and rebuild it at ``job.out``."""

    def publication_copy(self, job: Job) -> PublicationCopy:
        """Write ``job``'s original format, without its metadata, at ``job.out``."""


def make_converter(config: ConverterConfig) -> Converter:
    """The converter the configuration names (the only place that chooses)."""
    if config.converter == "dangerzone":
        from .dangerzone import DangerzoneConverter

        return DangerzoneConverter(config)
    from .own import SandboxConverter

    return SandboxConverter(config)
