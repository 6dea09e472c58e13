"""Textual's switches that write or send the screen (TEXTUAL_LOG, TEXTUAL_SCREENSHOT, the
screenshot action, TEXTUAL=devtools/debug) do nothing in the desk's TUI, whatever the
environment: watched under strace with all of them on. The control runs a bare Textual app
under the same environment and must be caught writing the screen's text to disk."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

from tests.watch import Trace, run_traced
from tipline.desk.importer import import_bundle
from tipline.desk.tui.app import DeskApp
from tipline.desk.vault import Vault

from .conftest import PASS, bundle_bytes, make_source, public_keys, submission
from .tui_probe import SHOWN

ROOT = Path(__file__).resolve().parents[2]
MARKER = SHOWN.split()[0].encode()


def probe(vault_dir: Path, tmp_path: Path, *args: str) -> Trace:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TEXTUAL": "devtools,debug",
        "TEXTUAL_LOG": str(tmp_path / "textual.log"),
        "TEXTUAL_SCREENSHOT": "0",
        "TEXTUAL_SCREENSHOT_LOCATION": str(tmp_path / "shots"),
        "TEXTUAL_DEBUG": "1",
    }
    (tmp_path / "shots").mkdir()
    done, trace = run_traced(
        [sys.executable, "-m", "tests.desk.tui_probe", str(vault_dir), *args],
        tmp_path / "strace.txt",
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return trace


def test_the_desk_tui_writes_and_sends_nothing_of_the_screen(
    vault_dir: Path, tmp_path: Path
) -> None:
    pks = public_keys(vault_dir)
    data = bundle_bytes([submission(pks, make_source("tidy otter"), SHOWN)])
    with Vault.open(vault_dir, PASS) as vault:
        import_bundle(vault, io.BytesIO(data))
    trace = probe(vault_dir, tmp_path)
    assert trace.leaks([MARKER]) == []
    assert trace.network() == []
    assert not (tmp_path / "textual.log").exists()
    assert list((tmp_path / "shots").iterdir()) == []
    assert list(tmp_path.glob("*.svg")) == []
    assert DeskApp.ENABLE_COMMAND_PALETTE is False


def test_control_a_bare_textual_app_writes_the_screen(vault_dir: Path, tmp_path: Path) -> None:
    trace = probe(vault_dir, tmp_path, "plain")
    leaks = trace.leaks([MARKER])
    assert leaks, "the switches wrote nothing: the check above would prove nothing"
    assert any(p.endswith("textual.log") for p, _ in leaks)  # TEXTUAL_LOG
    assert any(p.endswith(".svg") for p, _ in leaks)  # the screenshot action
