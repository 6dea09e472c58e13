"""A whole desk session watched while it runs (tests/watch.py): no plaintext is written anywhere
but the export folder, and the desk opens no socket. Each check has a positive control that plants
the leak it looks for and must be caught.

The vault holds more than 3,000 items, each with two attachment names, so that a triage listing
over all of them outgrows SQLite's page cache: with SQLite's default temp store that listing
wrote decrypted previews to /var/tmp/etilqs_* (unlinked at once, so no scan afterwards sees it).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.watch import AuditLog, Trace, run_traced
from tipline.desk.vault import Vault

from .conftest import PASS, bundle_bytes, create_vault, make_source, public_keys, submission
from .safe.samples import VISIBLE, plain_pdf
from .session import NOTE, REPLY, TUI_NOTE, TUI_REPLY

ITEMS = 3100
ROOT = Path(__file__).resolve().parents[2]
MARKERS = (
    b"MSGMARKER",
    b"ATTMARKER",
    NOTE.encode(),
    REPLY.encode(),
    TUI_NOTE.encode(),
    TUI_REPLY.encode(),
    VISIBLE.encode(),  # the PDF attachment's text
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A vault with one key and a bundle of 3,100 submissions (built once, copied per run)."""
    work = tmp_path_factory.mktemp("desk-session")
    vault = create_vault(work / "vault")
    pks = public_keys(vault)
    sources = [make_source(f"source {n}") for n in range(40)]
    subs = [
        submission(
            pks,
            sources[n % 40],
            f"MSGMARKER {n} " + "the ministry informant writes again " * 8,
            [
                (
                    f"report-{n}-{k}-from-the-ministry-of-the-interior-annex.txt",
                    f"ATTMARKER {n}.{k}\n".encode(),
                )
                for k in range(2)
            ],
            received=f"2026-11-{n % 28 + 1:02d}",
        )
        for n in range(1, ITEMS)
    ]
    # the newest item, the one the session exports: two text files and a PDF (its viewing copy
    # is made in the sandbox, tipline/desk/safe/)
    subs.append(
        submission(
            pks,
            sources[0],
            "MSGMARKER 0 " + "the ministry informant writes again " * 8,
            [("ATTMARKER-0.txt", b"ATTMARKER 0\n"), ("scan.pdf", plain_pdf())],
            received="2026-11-29",
        )
    )
    (work / "bundle.tlb").write_bytes(bundle_bytes(subs))
    return work


def session(template: Path, tmp_path: Path, plant: str = "") -> tuple[Trace, list[list[object]]]:
    """Run tests/desk/session.py on a fresh copy of the template, under strace."""
    work = tmp_path / "work"
    shutil.copytree(template, work)
    (work / "export").mkdir()
    (work / "usb").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTUAL")}
    env["PYTHONPATH"] = str(ROOT)
    done, trace = run_traced(
        [sys.executable, "-m", "tests.desk.session", str(work), plant],
        tmp_path / "strace.txt",
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "imported 3100 new" in done.stdout
    return trace, json.loads((work / "audit.json").read_text())


@pytest.fixture(scope="module")
def clean(
    template: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Trace, list[list[object]]]:
    """The session as shipped, run once for the checks below."""
    tmp_path = tmp_path_factory.mktemp("clean")
    return (tmp_path, *session(template, tmp_path))


def test_desk_session_writes_plaintext_only_to_the_export_folder(
    clean: tuple[Path, Trace, list[list[object]]],
) -> None:
    tmp_path, trace, audit = clean
    export = tmp_path / "work" / "export"
    assert trace.leaks(MARKERS, [export]) == []
    # the watcher does see plaintext writes: the export folder got the message and attachments
    exported = [p for p, m in trace.leaks(MARKERS) if m in (b"MSGMARKER", b"ATTMARKER")]
    assert any(p.startswith(str(export.resolve())) for p in exported), trace.written().keys()
    assert list(export.glob("*-scan.viewing.pdf"))  # the PDF went through the sandbox
    assert len(list(export.glob("*.provenance.json"))) > 2  # the TUI exported as well
    # and no open for writing outside the work folder (vault, usb, export) at all
    # (the sandbox may write its own /proc maps and its tmpfs /tmp; anyone may open /dev/null)
    work = str((tmp_path / "work").resolve())
    sandbox = trace.sandboxed()
    assert sandbox, "the PDF's viewing copy was made without the sandbox being seen"
    outside = [
        (c.pid, c.paths or c.path)
        for c in trace.opened_for_writing()
        if not all(
            str(p).startswith(work)
            or p == "/dev/null"
            or (c.pid in sandbox and (p.startswith("/tmp/") or not p.startswith("/")))
            for p in (c.paths or (c.path,))
        )
    ]
    assert outside == []
    log = AuditLog(events=[(str(e), tuple(a)) for e, a in audit])  # type: ignore[misc]
    assert log.writes_outside([tmp_path / "work"]) == []
    assert len(log.events) > ITEMS  # it did record: an open and a rename per envelope


def test_desk_session_opens_no_socket(clean: tuple[Path, Trace, list[list[object]]]) -> None:
    _, trace, audit = clean
    assert trace.network() == []
    log = AuditLog(events=[(str(e), tuple(a)) for e, a in audit])  # type: ignore[misc]
    assert log.network() == []


def test_control_sqlite_default_temp_store_spills(template: Path, tmp_path: Path) -> None:
    trace, _ = session(template, tmp_path, "spill")
    leaks = trace.leaks(MARKERS, [tmp_path / "work" / "export"])
    assert any("etilqs_" in path for path, _ in leaks), leaks


def test_control_lazy_socket_is_seen(template: Path, tmp_path: Path) -> None:
    trace, audit = session(template, tmp_path, "socket")
    assert any(c.name == "socket" for c in trace.network())
    log = AuditLog(events=[(str(e), tuple(a)) for e, a in audit])  # type: ignore[misc]
    assert any(e[0] == "socket.connect" for e in log.network())


def test_control_unnamed_temp_file_is_seen(template: Path, tmp_path: Path) -> None:
    trace, _ = session(template, tmp_path, "tempfile")
    leaks = trace.leaks(MARKERS, [tmp_path / "work" / "export"])
    assert any(m == b"MSGMARKER" for _, m in leaks), leaks


def test_session_vault_holds_no_plaintext_afterwards(
    clean: tuple[Path, Trace, list[list[object]]],
) -> None:
    """The leftovers check too (cheap): every file in the vault and usb folder, after."""
    tmp_path = clean[0]
    for folder in ("vault", "usb"):
        for path in (tmp_path / "work" / folder).rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert not [m for m in MARKERS if m in data], path
    with Vault.open(tmp_path / "work" / "vault", PASS) as vault:
        assert vault.store.count() == ITEMS + 2  # two replies
