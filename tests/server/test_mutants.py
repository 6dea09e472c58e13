"""Sharp tests for the blob store and the request hygiene, each written against a mutant that
the rest of the suite let through (``make mutation-paths``, tests/mutation/survivors.md): every
assertion here fails on the mutant it was written for.
"""

from __future__ import annotations

import datetime
import io
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tipline.server import assets, blobs
from tipline.server.blobs import BlobStore
from tipline.server.security import (
    CSP_CRYPTO,
    CSP_PLAIN,
    BoundedJSON,
    QuietRequestHandler,
    _Recording,
    _Replay,
    quiet_logging,
)

BLOB = "cd" * 16


# --- blobs.py --------------------------------------------------------------------------------


def test_a_blob_is_found_where_it_is_now(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, 0)
    store.write("replies", BLOB, lambda f: f.write(b"sealed"))
    assert store.path("replies", BLOB) == store.pending_path("replies", BLOB)
    assert store.publish(now=time.time() + 3600) == 1
    assert store.path("replies", BLOB) == store.published_path("replies", BLOB)
    # A published blob is never given back to an upload.
    assert store.give_back("replies", BLOB, tmp_path / "partial") is False
    assert not (tmp_path / "partial").exists()


def test_opening_a_missing_blob_names_its_kind_not_its_path(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, 0)
    with pytest.raises(FileNotFoundError) as caught:
        store.open("submissions", BLOB)
    assert str(caught.value) == "no submission with that id"


def test_a_blob_read_is_not_inherited_by_children(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, 0)
    store.write("submissions", BLOB, lambda f: f.write(b"sealed"))
    with store.open("submissions", BLOB) as f:
        assert os.get_inheritable(f.fileno()) is False
        assert f.read() == b"sealed"


def test_a_blob_is_written_where_the_sweep_looks_for_leftovers(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, 0)
    seen: list[Path] = []

    def fill(f: BinaryIO) -> None:
        seen.append(Path(os.readlink(f"/proc/self/fd/{f.fileno()}")))
        f.write(b"sealed")

    store.write("submissions", BLOB, fill)
    (written,) = seen
    # In the store's own temp folder (same file system: the rename is atomic) and named as
    # the sweep expects, so what a crash leaves there is found and removed.
    assert written.parent == store.tmp and written.name.startswith(".blob-"), written
    assert list(store.tmp.glob(".blob-*")) == []


def test_a_blob_opens_where_no_atime_may_be_kept_too(tmp_path: Path) -> None:
    """O_NOATIME is refused to anyone but the file's owner: the read falls back to a plain
    one. Run as nobody in a forked child, on a file root owns (the control: O_NOATIME is
    refused there)."""
    if os.getuid() != 0:
        pytest.skip("needs root, to become another user")  # pragma: no cover
    folder = Path(tempfile.mkdtemp())
    try:
        folder.chmod(0o755)
        blob = folder / "blob"
        blob.write_bytes(b"sealed")
        blob.chmod(0o644)
        # The owner's read keeps O_NOATIME (and, in-process, shows mutmut that this test
        # reaches the function: what the child below runs is not seen by its selection).
        with blobs._read_noatime(blob) as f:
            assert f.read() == b"sealed"
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                os.setgid(65534)
                os.setuid(65534)
                try:
                    os.close(os.open(blob, os.O_RDONLY | os.O_NOATIME))
                    refused = b"n"
                except PermissionError:
                    refused = b"y"
                with blobs._read_noatime(blob) as f:
                    os.write(write, refused + f.read())
            finally:
                os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        with os.fdopen(read, "rb") as answer:
            assert answer.read() == b"ysealed"
    finally:
        shutil.rmtree(folder)


def test_an_upload_path_is_only_for_an_upload_id(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, 0)
    assert store.upload_path(BLOB) == store.uploads / f"{BLOB}.part"
    for bad in ("../" + BLOB[3:], BLOB.upper(), BLOB + "0", ""):
        with pytest.raises(ValueError) as caught:
            store.upload_path(bad)
        assert str(caught.value) == "not an upload id"


def test_a_failed_write_raises_its_own_error_even_if_the_temp_file_is_gone(
    tmp_path: Path,
) -> None:
    store = BlobStore(tmp_path, 0)

    def fill(f: BinaryIO) -> None:
        os.unlink(os.readlink(f"/proc/self/fd/{f.fileno()}"))
        raise OSError("the disk went away")

    with pytest.raises(OSError, match="the disk went away"):
        store.write("submissions", BLOB, fill)
    assert not store.exists("submissions", BLOB)


def test_the_free_space_floor_counts_what_is_coming(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    # Exactly the floor left: allowed. One byte under it: refused. Free space moves a little
    # while the test runs, so the margins are a megabyte either way.
    BlobStore(tmp_path, free - (1 << 20)).check_space(0)
    with pytest.raises(blobs.LowDiskSpaceError):
        BlobStore(tmp_path, free - (1 << 20)).check_space(2 << 20)
    BlobStore(tmp_path, 0).check_space(free - (1 << 20))


def test_the_store_makes_its_private_folders(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, 0)
    made = {"tmp", "uploads", "pending", *blobs.KINDS, *(f"pending/{k}" for k in blobs.KINDS)}
    assert {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")} == made
    for name in made:
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o700, name
    assert (store.tmp, store.uploads, store.pending) == (
        tmp_path / "tmp",
        tmp_path / "uploads",
        tmp_path / "pending",
    )


def test_days_and_hours_start_where_they_should(tmp_path: Path) -> None:
    moment = 20_000 * 86400 + 7 * 3600 + 59 * 60 + 59.5  # 07:59:59.5 on day 20,000
    assert blobs.day_start(moment) == 20_000 * 86400
    assert blobs.hour_start(moment) == 20_000 * 86400 + 7 * 3600
    path = tmp_path / "f"
    path.write_bytes(b"x")
    blobs.blur(path, to=12345.0)
    assert (path.stat().st_atime, path.stat().st_mtime) == (12345.0, 12345.0)
    blobs.blur(path)
    assert path.stat().st_mtime == blobs.day_start()


def test_age_of_counts_from_the_ctime(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    ctime = path.stat().st_ctime
    assert blobs.age_of(path, now=ctime + 1000) == 1000
    assert 0 <= blobs.age_of(path) < 60


# --- security.py: the headers of every response ---------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_response_gets_the_headers_for_its_kind(app: Flask) -> None:
    client = app.test_client()
    built = sorted(p.name for p in (Path(app.static_folder or "") / "build" / "assets").iterdir())
    script = next(n for n in built if n.endswith(".js"))
    style = next(n for n in built if n.endswith(".css"))
    plain, crypto = CSP_PLAIN, CSP_CRYPTO
    kinds = {
        "/": (plain, "no-store"),  # a page without scripts
        "/submit": (crypto, "no-store"),  # a page that seals in the browser (crypto_page)
        f"{assets.FOLDER}{script}": (crypto, assets.IMMUTABLE),  # a script: a Worker's CSP
        f"{assets.FOLDER}{style}": (plain, assets.IMMUTABLE),  # a hashed file, not a script
        "/static/css/source.css": (plain, "no-store"),  # static, but not content-addressed
        f"{assets.FOLDER}missing.0000.js": (crypto, "no-store"),  # a 404 is never kept
    }
    for path, (csp, cache) in kinds.items():
        with client.get(path) as response:
            headers = response.headers
            assert response.status_code == (404 if "missing" in path else 200), path
            assert headers["Content-Security-Policy"] == csp, path
            assert headers["Cache-Control"] == cache, path
            assert headers.get("Pragma") == (None if cache == assets.IMMUTABLE else "no-cache")
            assert headers["Referrer-Policy"] == "no-referrer"
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["X-Frame-Options"] == "DENY"
            assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
            assert headers["Cross-Origin-Resource-Policy"] == "same-origin"
            assert headers["Permissions-Policy"] == (
                "camera=(), microphone=(), geolocation=(), interest-cohort=()"
            )
            assert "Server" not in headers and "Last-Modified" not in headers, path
    # Not a script, whatever its name says, unless it is a static file.
    with client.get("/nothing.js") as response:
        assert response.status_code == 404
        assert response.headers["Content-Security-Policy"] == plain


def test_cookies_sessions_and_forms_are_configured_as_promised(app_factory: Any) -> None:
    app = app_factory()
    cookie = app.test_client().get("/").headers["Set-Cookie"]
    assert cookie.startswith("tipline=") and "; HttpOnly" in cookie
    assert "SameSite=Strict" in cookie and "Secure" not in cookie
    config = app.config
    assert config["SESSION_REFRESH_EACH_REQUEST"] is False
    assert config["PERMANENT_SESSION_LIFETIME"] == datetime.timedelta(
        minutes=config["SESSION_MINUTES"]
    )
    assert config["WTF_CSRF_TIME_LIMIT"] is None  # a source may take hours over a message
    assert config["WTF_CSRF_SSL_STRICT"] is False  # Tor Browser sends no Referer
    assert config["SEND_FILE_MAX_AGE_DEFAULT"] is None
    assert config["MAX_FORM_MEMORY_SIZE"] == 1 << 20
    assert config["MAX_FORM_PARTS"] == 200
    # No request line, with its address and time, in any log.
    assert logging.getLogger("werkzeug").level == logging.ERROR
    assert logging.getLogger("gunicorn.access").disabled is True


def test_over_https_the_cookie_is_secure(app_factory: Any) -> None:
    app = app_factory(HTTPS=True)
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert "; Secure" in app.test_client().get("/").headers["Set-Cookie"]


def test_json_nested_too_deeply_is_invalid_json_not_a_crash(app_factory: Any) -> None:
    provider = BoundedJSON(app_factory())
    assert provider.loads('{"a": [1, 2]}', parse_int=str) == {"a": ["1", "2"]}  # kwargs kept
    with pytest.raises(ValueError) as caught:
        provider.loads("[" * 100_000 + "]" * 100_000)
    assert str(caught.value) == "JSON nested too deeply"


# --- security.py: the no-JS form's head, read for its CSRF token and put back ----------------


def test_the_replayed_body_gives_the_head_then_the_rest() -> None:
    assert _Replay(b"head", io.BytesIO(b"+rest")).read() == b"head+rest"
    assert _Replay(b"head", io.BytesIO(b"+rest")).read(-1) == b"head+rest"
    body = _Replay(b"head", io.BytesIO(b"+rest"))
    assert body.read(0) == b""
    assert body.read(3) == b"hea"
    assert body.read(3) == b"d"  # the rest of the head first, never mixed with the rest
    assert body.read() == b"+rest"
    whole = _Replay(b"head", io.BytesIO(b"+rest"))
    assert whole.read() == b"head+rest"
    assert whole.read() == b""


def test_the_replayed_body_reads_lines() -> None:
    body = _Replay(b"\nab\ncd", io.BytesIO(b"ef\ngh\n"))
    assert body.readline() == b"\n"
    assert body.readline(0) == b""
    assert body.readline(1) == b"a"
    assert body.readline(-1) == b"b\n"
    assert body.readline() == b"cd"  # the head ends: a line never runs into the rest
    assert body.readline(1) == b"e"
    assert body.readline() == b"f\n"
    assert body.readline(-1) == b"gh\n"
    assert body.readline() == b""


def test_the_recording_reads_at_most_its_limit_and_keeps_it() -> None:
    recording = _Recording(io.BytesIO(b"abcdefgh"), 5)
    assert recording.read(0) == b""
    assert recording.read(2) == b"ab"
    assert recording.read(2) == b"cd"
    assert recording.read(2) == b"e"
    assert recording.read(2) == b""
    assert recording.read() == b""
    assert recording.read_so_far == b"abcde"
    whole = _Recording(io.BytesIO(b"abcdefgh"), 5)
    assert whole.read() == b"abcde"
    assert whole.read() == b""


# --- security.py: the development server's handler --------------------------------------------


def test_quiet_logging_drops_request_lines_and_keeps_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """werkzeug's request lines (INFO) and gunicorn's access log carry addresses: both are
    dropped; a warning of any other logger, and werkzeug's errors, still reach the log."""
    werkzeug, access = logging.getLogger("werkzeug"), logging.getLogger("gunicorn.access")
    saved = werkzeug.level, access.disabled
    werkzeug.setLevel(logging.NOTSET)
    access.disabled = False
    caplog.set_level(logging.DEBUG)  # the root shows everything that reaches it
    try:
        werkzeug.info("control: a request line")
        access.info("control: an access line")
        assert [r.getMessage() for r in caplog.records] == [
            "control: a request line",
            "control: an access line",
        ]
        caplog.clear()
        quiet_logging()
        werkzeug.info('127.0.0.1 - - "GET /marker HTTP/1.1" 200 -')
        access.info('127.0.0.1 "GET /marker HTTP/1.1"')
        access.error("an access error is an access line too")
        werkzeug.error("werkzeug error stays")
        logging.getLogger("tipline.server.probe").warning("a warning stays")
        kept = [r.getMessage() for r in caplog.records]
        assert kept == ["werkzeug error stays", "a warning stays"]
    finally:
        werkzeug.setLevel(saved[0])
        access.disabled = saved[1]


def test_the_development_server_names_no_client_even_in_an_error_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    quiet_logging()
    caplog.set_level(logging.DEBUG, logger="werkzeug")

    def app(environ: object, start_response: object) -> list[bytes]:
        raise AssertionError("never reached: the request line is malformed")

    server = make_server("127.0.0.1", 0, app, request_handler=QuietRequestHandler)
    thread = threading.Thread(target=server.handle_request)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
            client.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            answer = client.recv(4096)
    finally:
        thread.join(10)
        server.server_close()
    assert b"400" in answer
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    # Positive control: the error line was written. It names neither the client (only "-")
    # nor the time (werkzeug's "[30/Nov/2026 10:52:32]").
    assert len(errors) == 1 and "code 400" in errors[0], errors
    assert errors[0].startswith("- - - [-] code 400"), errors
    assert "127.0.0.1" not in caplog.text
    assert not re.search(r"\d\d:\d\d", caplog.text), caplog.text
