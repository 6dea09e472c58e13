"""The desk's own converter: stage 1 in the sandbox, stage 2 outside it (Debian packages only)."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path
from typing import IO

from .converter import MIB, ConverterConfig, Job, PublicationCopy, ViewingCopy
from .errors import BoundsError, ConversionError, UnsupportedError
from .pixels import PixelReader, failure
from .rebuild import Ocr, build_pdf, build_png
from .sandbox import HERE, Limits, Run, Sandbox

STAGE1 = HERE / "stage1.py"
STAGE1_INSIDE = "/opt/tipline/stage1.py"
CLEAN_MAGIC = b"TLCLEAN1"
MAX_REPORT = 64 << 10
WORK_ROOM = 1 << 30  # tmpfs beyond the original: LibreOffice's profile, its PDF, mat2's copy
MAX_SOURCE_PIXELS = 200_000_000  # an image claiming more is refused before it is decoded


class SandboxConverter:
    """Viewing copies through pixels, publication copies through mat2, both in the sandbox."""

    name = "sandbox"

    def __init__(
        self, config: ConverterConfig, sandbox: Sandbox | None = None, stage1: Path = STAGE1
    ) -> None:
        # ``stage1`` is for the tests, which put hostile programs in its place.
        self.config = config
        self.sandbox = sandbox or Sandbox()
        self.stage1 = stage1

    def check(self) -> None:
        """The sandbox's programs are here and the seccomp filter builds."""
        self.sandbox.check()

    def limits(self, size: int) -> Limits:
        """The limits for one original of ``size`` bytes."""
        if size > self.config.max_original:
            raise ConversionError(
                f"it is larger than the {self.config.max_original // MIB} MiB the sandbox takes"
            )
        return Limits(
            seconds=self.config.seconds,
            memory=self.config.memory,
            tmpfs=size + WORK_ROOM,
            file_size=size + WORK_ROOM,
        )

    def _start(self, args: list[str], job: Job) -> Run:
        run = self.sandbox.start(
            [self.sandbox.tools.python, "-I", "-B", STAGE1_INSIDE, *args],
            self.limits(job.size),
            files=[(self.stage1, STAGE1_INSIDE)],
            cancel=job.cancel,
        )
        try:
            job.feed(run.stdin)
            run.stdin.close()
        except BrokenPipeError:
            pass  # the sandbox stopped reading: its exit status says why
        except BaseException:
            run.kill("cancelled")
            run.close_quietly()
            raise
        return run

    def viewing_copy(self, job: Job) -> ViewingCopy:
        """Stage 1 renders in the sandbox; stage 2 rebuilds from the checked pixel stream."""
        if job.kind.route not in ("pdf", "office", "image"):
            raise UnsupportedError(job.kind.label)
        b = self.config.bounds
        args = ["view", job.kind.converter_kind, str(self.config.dpi)]
        args += [str(n) for n in (b.pages, b.side, b.page_pixels, MAX_SOURCE_PIXELS)]
        run = self._start(args, job)
        with run:
            try:
                reader = PixelReader(run.stdout, b)
                if job.kind.route == "image":
                    pages = build_png(reader, job.out, job.progress)
                else:
                    ocr = None
                    if job.ocr:
                        ocr = Ocr(self.sandbox, self.limits(0), self.config.ocr_language)
                    pages = build_pdf(
                        reader, job.out, job.workdir, self.config.dpi, ocr, job.progress, job.cancel
                    )
            except BoundsError:
                _explain(run)
                raise
            code = run.close()
        if code != 0:
            raise failure(code)
        return ViewingCopy("png" if job.kind.route == "image" else "pdf", pages, job.ocr)

    def publication_copy(self, job: Job) -> PublicationCopy:
        """mat2 in the sandbox; the report and the cleaned file come back length-prefixed."""
        if job.kind.route not in ("pdf", "office", "image", "media", "text"):
            raise UnsupportedError(job.kind.label)
        run = self._start(["clean", job.kind.ext], job)
        with run:
            try:
                found, left = _read_clean(run.stdout, job.out, _max_clean(job.size))
            except BoundsError:
                _explain(run)
                raise
            code = run.close()
        if code != 0:
            raise failure(code)
        return PublicationCopy(tuple(found), tuple(left))


def _max_clean(size: int) -> int:
    # mat2 may grow a file (it renders a PDF's pages to images), but not without bound.
    return max(4 * size, 64 * MIB)


def _explain(run: Run) -> None:
    """After the stream broke a bound: if the sandbox stopped by itself, say why it did."""
    try:
        code = run.proc.wait(timeout=2)
    except subprocess.TimeoutExpired:
        return  # still running: the broken bound is the reason, and the sandbox is killed
    run.check_stopped()
    if code != 0:
        raise failure(code)


def _exact(src: IO[bytes], size: int) -> bytes:
    data = src.read(size)
    if len(data) != size:
        raise BoundsError("it ended early")
    return data


def _read_clean(src: IO[bytes], out: Path, max_size: int) -> tuple[list[str], list[str]]:
    """Read mat2's report and cleaned file from the sandbox, within bounds."""
    if _exact(src, len(CLEAN_MAGIC)) != CLEAN_MAGIC:
        raise BoundsError("it is not a cleaned file")
    (length,) = struct.unpack(">I", _exact(src, 4))
    if length > MAX_REPORT:
        raise BoundsError("its report is too long")
    try:
        report = json.loads(_exact(src, length))
        found = [str(f)[:80] for f in report["found"]][:100]
        left = [str(f)[:80] for f in report["left"]][:100]
    except (ValueError, KeyError, TypeError) as exc:
        raise BoundsError("its report does not read") from exc
    (size,) = struct.unpack(">Q", _exact(src, 8))
    if size > max_size:
        raise BoundsError("the cleaned file is larger than the desk accepts")
    with out.open("xb") as dst:
        left_to_copy = size
        while left_to_copy:
            chunk = src.read(min(left_to_copy, 1 << 20))
            if not chunk:
                raise BoundsError("it ended early")
            dst.write(chunk)
            left_to_copy -= len(chunk)
    if src.read(1):
        raise BoundsError("there are bytes after the cleaned file")
    return found, left
