"""Dangerzone as the converter, where ``dangerzone-cli`` is installed (``TIPLINE_CONVERTER``).

Dangerzone (freedomofpress/dangerzone) does what the desk's own pipeline does, in a gVisor
container: the document becomes pixels inside, a PDF is rebuilt outside. Its command line takes a
file, so the original is written to the desk's private working folder for the time of the run
and removed after it. Publication copies are not Dangerzone's job: they go through the desk's own
sandbox and mat2, as with the default converter.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time

from .converter import ConverterConfig, Job, PublicationCopy, ViewingCopy
from .errors import (
    CancelledError,
    ConversionError,
    SandboxUnavailableError,
    TimeLimitError,
    UnsupportedError,
)
from .own import SandboxConverter

PROGRAM = "dangerzone-cli"


class DangerzoneConverter:
    """Viewing copies by ``dangerzone-cli``; publication copies by the desk's own sandbox."""

    name = "dangerzone"

    def __init__(self, config: ConverterConfig, program: str | None = None) -> None:
        self.config = config
        self.program = program or shutil.which(PROGRAM) or PROGRAM
        self.own = SandboxConverter(config)

    def check(self) -> None:
        """``dangerzone-cli`` is on the PATH."""
        if not (os.path.isfile(self.program) and os.access(self.program, os.X_OK)):
            raise SandboxUnavailableError(
                f"TIPLINE_CONVERTER is dangerzone, but {PROGRAM} is not installed"
            )

    def viewing_copy(self, job: Job) -> ViewingCopy:
        """Run ``dangerzone-cli`` on the original; its output is the viewing copy (a PDF)."""
        if job.kind.route not in ("pdf", "office", "image"):
            raise UnsupportedError(job.kind.label)
        self.check()
        original = job.workdir / f"original.{job.kind.ext}"
        try:
            with original.open("xb") as f:
                os.chmod(original, 0o600)
                job.feed(f)
            job.progress(0, 1)
            command = [self.program, "--output-filename", str(job.out)]
            if job.ocr:
                command += ["--ocr-lang", self.config.ocr_language]
            self._run([*command, str(original)], job.cancel)
        finally:
            with contextlib.suppress(FileNotFoundError):
                original.unlink()
        if not job.out.is_file() or job.out.read_bytes()[:5] != b"%PDF-":
            raise ConversionError("Dangerzone wrote no PDF")
        job.progress(1, 1)
        return ViewingCopy("pdf", 0, job.ocr)

    def _run(self, command: list[str], cancel: threading.Event) -> None:
        deadline = time.monotonic() + self.config.seconds
        with subprocess.Popen(  # noqa: S603 - the configured program, no shell
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        ) as proc:
            while proc.poll() is None:
                if cancel.wait(0.1) or time.monotonic() > deadline:
                    proc.kill()
                    proc.wait()
                    if cancel.is_set():
                        raise CancelledError()
                    raise TimeLimitError(f"it took longer than {self.config.seconds:g} seconds")
            if proc.returncode != 0:
                raise ConversionError("Dangerzone could not convert it")

    def publication_copy(self, job: Job) -> PublicationCopy:
        """mat2 in the desk's own sandbox."""
        return self.own.publication_copy(job)
