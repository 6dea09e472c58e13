"""Fixtures for safe exports: a real vault, real sealed submissions imported from a bundle, and
the desk run as a separate process when its own memory is what is measured."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..conftest import PASS, Run, Sub, bundle_bytes, make_source, public_keys, submission

File = tuple[str, bytes, str]
Imported = Callable[[Sequence[File]], Sub]


@pytest.fixture
def imported(tmp_path: Path, vault_dir: Path, run: Run) -> Imported:
    """Seal a submission with these (name, bytes, claimed type) files and import it."""

    def one(files: Sequence[File], message: str = "files attached") -> Sub:
        sub = submission(public_keys(vault_dir), make_source(), message, files)
        bundle = tmp_path / f"{sub.item.id}.tlb"
        bundle.write_bytes(bundle_bytes([sub]))
        run("import", str(bundle))
        return sub

    return one


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "exported"
    folder.mkdir()
    return folder


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def vault_state(vault_dir: Path) -> dict[str, str]:
    """Every file of the vault and its hash: an export must leave it exactly as it was."""
    return {
        str(p.relative_to(vault_dir)): sha256(p.read_bytes())
        for p in sorted(vault_dir.rglob("*"))
        if p.is_file() and p.name != "lock"
    }


@dataclass
class Process:
    code: int
    stdout: str
    stderr: str
    max_rss_mib: float  # of the desk process itself, not of the programs it starts
    seconds: float


# The real command line in a process of its own, which reports its own peak RSS at the end:
# VmHWM, the high-water mark of this program's memory only (getrusage's ru_maxrss would also
# count the pages of the pytest process it was forked from; the sandbox's programs are other
# processes and are not counted either way).
HARNESS = """
import re, sys
from tipline.desk.cli import cli
code = 0
try:
    cli.main(prog_name="tipline-desk", args=sys.argv[1:])
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
status = open("/proc/self/status").read()
sys.stderr.write("\\nMAXRSS %s\\n" % re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1))
sys.exit(code)
"""


def desk_process(vault_dir: Path, *args: str, env: dict[str, str] | None = None) -> Process:
    """Run `tipline-desk --vault VAULT ARGS` as its own process; measure its peak RSS."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", HARNESS, "--vault", str(vault_dir), *args],
        input=(PASS + "\n").encode(),
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=900,
        check=False,
    )
    stderr = done.stderr.decode()
    head, _, rss = stderr.rpartition("\nMAXRSS ")
    return Process(
        done.returncode,
        done.stdout.decode(),
        head.strip(),
        int(rss) / 1024,
        time.monotonic() - started,
    )
