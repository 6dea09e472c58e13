"""Submissions watched while they happen: gunicorn (2 workers, production settings) runs under
``strace -f`` (tests/watch.py) and no plaintext marker may be written to any file by any of its
processes, temporary files unlinked at once included. Listing files afterwards cannot see those.

- no JS (Tor Browser's Safest level): the server seals each part as it streams in; a file of
  ~840 KB is past the 500 KB at which Werkzeug would spool it to disk in plaintext;
- JS (Standard): the browser seals, so even a server that tees every request body to disk writes
  no plaintext.

Positive controls plant the leak the watcher looks for (tests/browser/planted_wsgi.py): a tee of
every request body into an unnamed temporary file, and Werkzeug's default stream factory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import Error as PlaywrightError

from tests.watch import Trace, strace_command
from tipline.server import db

from ..server.replies import open_stored, submission_ids
from .source_fixtures import Server, _free_port, prepare_site, wait_until_serving

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
MESSAGE = "Watched-Message-Marker-5e11: the convoy leaves at dawn"
SMALL = b"Watched-Small-Marker-0a0a " * 10
BIG = b"Watched-Big-Marker-b1b1 " * 35_000  # ~840 KB: past Werkzeug's 500 KB spool threshold
MARKERS = (b"Watched-Message-Marker", b"Watched-Small-Marker", b"Watched-Big-Marker")


@contextlib.contextmanager
def watched_server(base: Path, plant: str = "") -> Iterator[tuple[Server, Path]]:
    """A fresh source server (gunicorn, 2 workers) under strace; yields it and the trace file,
    complete once the block ends (gunicorn stopped through its pid file, so strace follows it
    to the end rather than detaching)."""
    site = prepare_site(base)
    data_dir, tmp_dir, log, journalist, app = (
        site.data_dir,
        site.tmp_dir,
        site.log,
        site.journalist,
        site.app,
    )
    env = {**os.environ, **site.env, "TIPLINE_TEST_PLANT": plant, "PYTHONPATH": str(ROOT)}
    port, pidfile, trace = _free_port(), base / "gunicorn.pid", base / "strace.txt"
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:tipline.server.gunicorn_conf",
        "-w",
        "2",
        "-b",
        f"127.0.0.1:{port}",
        "-p",
        str(pidfile),
        "tests.browser.planted_wsgi:app",
    ]
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*strace_command(trace), *args], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_until_serving(url + "/", proc, log)
        yield Server(url, data_dir, tmp_dir, log, journalist, app), trace
    finally:
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            os.kill(int(pidfile.read_text()), signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()  # strace: its tracees go on without it, so end gunicorn as well
            proc.wait()
        db.engine_of(app).dispose()


def submit(chromium: Browser, server: Server, tmp_path: Path, js: bool) -> bool:
    """Send MESSAGE with two files through the real form; True when a codename was shown."""
    (tmp_path / "notes.txt").write_bytes(SMALL)
    (tmp_path / "scan.pdf").write_bytes(BIG)
    context = chromium.new_context(java_script_enabled=js)
    try:
        page = context.new_page()
        page.goto(server.url + "/submit")
        if js:
            page.locator("#send:enabled").wait_for(timeout=60_000)
        page.get_by_label("Your message").fill(MESSAGE)
        page.get_by_label("Files (optional)").set_input_files(
            [str(tmp_path / "notes.txt"), str(tmp_path / "scan.pdf")]
        )
        page.get_by_role("button", name="Send").click()
        if js:
            page.locator("#done").wait_for(state="visible", timeout=60_000)
        else:
            page.wait_for_load_state()
        return page.locator("#codename").count() == 1
    except PlaywrightError:
        return False
    finally:
        context.close()


def check_stored(server: Server, before: set[str], sealed_by: str) -> None:
    (new,) = submission_ids(server.app) - before
    inner, files = open_stored(server.app, server.journalist, new)
    assert inner.sealed_by == sealed_by and inner.message == MESSAGE
    assert files == [SMALL, BIG]


def test_no_js_submission_writes_no_plaintext(chromium: Browser, tmp_path: Path) -> None:
    with watched_server(tmp_path / "server") as (server, trace_file):
        before = submission_ids(server.app)
        assert submit(chromium, server, tmp_path, js=False)
        check_stored(server, before, "server")
    trace = Trace.parse(trace_file.read_text(errors="replace"))
    assert trace.leaks(MARKERS) == []
    # the watcher saw the server's own writes: the sealed spool (unnamed, in the blob store's
    # temp folder) and the blob
    written = trace.written()
    spool = str(server.data_dir / "blobs" / "tmp" / "#")
    assert sum(len(d) for p, d in written.items() if p.startswith(spool)) > len(BIG)
    assert any("/blobs/tmp/.blob-" in p for p in written)


def test_control_a_tee_of_the_no_js_body_is_caught(chromium: Browser, tmp_path: Path) -> None:
    with watched_server(tmp_path / "server", "tee") as (server, trace_file):
        before = submission_ids(server.app)
        assert submit(chromium, server, tmp_path, js=False)  # the tee changes nothing visible
        check_stored(server, before, "server")
    leaks = Trace.parse(trace_file.read_text(errors="replace")).leaks(MARKERS)
    assert {m for _, m in leaks} == set(MARKERS)
    assert all(p.startswith(str(server.tmp_dir)) for p, _ in leaks), leaks


def test_control_werkzeugs_default_spool_is_caught(chromium: Browser, tmp_path: Path) -> None:
    with watched_server(tmp_path / "server", "werkzeug") as (server, trace_file):
        submit(chromium, server, tmp_path, js=False)  # it may fail: the leak happens first
    leaks = Trace.parse(trace_file.read_text(errors="replace")).leaks(MARKERS)
    assert b"Watched-Big-Marker" in {m for _, m in leaks}, leaks


def test_browser_submission_writes_no_plaintext_even_through_a_tee(
    chromium: Browser, tmp_path: Path
) -> None:
    """Sealed in the browser: a server that tees every body to disk still writes only
    ciphertext (the tee's own writes are seen, and hold no marker)."""
    with watched_server(tmp_path / "server", "tee") as (server, trace_file):
        before = submission_ids(server.app)
        assert submit(chromium, server, tmp_path, js=True)
        check_stored(server, before, "browser")
    trace = Trace.parse(trace_file.read_text(errors="replace"))
    assert trace.leaks(MARKERS) == []
    teed = sum(len(d) for p, d in trace.written().items() if p.startswith(str(server.tmp_dir)))
    assert teed > len(BIG)  # the whole ciphertext went through the tee
