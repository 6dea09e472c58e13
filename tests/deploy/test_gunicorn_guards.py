"""The app's own guards behind nginx, in the real gunicorn with the shipped settings: a request
body that stalls frees its thread after the read timeout (tipline.server.bodytimeout), and a
malformed request leaves no line in the log (tipline.server.gunicorn_conf.QuietLogger).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from .conftest import csrf_token, new_circuit, serve_stack
from .test_availability import stalled_submit

pytestmark = pytest.mark.slow


def seconds_until_answered(port: int, cookie: str, token: str, wait: float) -> float | None:
    """Seconds until a stalled no-JS submission gets an answer (or its connection ends)."""
    sock = stalled_submit(port, new_circuit(), cookie, token)
    sock.settimeout(wait)
    start = time.monotonic()
    with sock:
        try:
            sock.recv(1)
        except TimeoutError:
            return None
    return time.monotonic() - start


@pytest.mark.parametrize(("app", "answered"), [("short", True), ("shipped", False)])
def test_a_stalled_body_frees_its_thread_after_the_read_timeout(
    tmp_path: Path, app: str, answered: bool
) -> None:
    """With a 2 s timeout the stalled submission is answered within seconds; the control, the
    shipped 75 s one, is not answered in 8 s (and nginx's own 60 s has not come either)."""
    extra = ["tests.deploy.short_timeout_app:app"] if app == "short" else []
    with serve_stack(tmp_path, gunicorn_args=extra) as served:
        client = served.source()
        token = csrf_token(client.request("GET", "/submit"))
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        took = seconds_until_answered(served.nginx.source_port, cookie, token, wait=8)
        assert client.request("GET", "/").status == 200
    log = served.gunicorn_log.read_text(errors="replace")
    assert "Traceback" not in log, log[-2000:]
    if answered:
        assert took is not None and 1.5 < took < 8, took
    else:
        assert took is None, took


@pytest.mark.parametrize(("logger", "logged"), [(None, False), ("gunicorn.glogging.Logger", True)])
def test_a_malformed_request_is_not_logged(
    tmp_path: Path, logger: str | None, logged: bool
) -> None:
    """Straight to gunicorn's socket (nginx would refuse it first). Control: gunicorn's own
    logger writes its warning with the time."""
    extra = ["--logger-class", logger] if logger else []
    with serve_stack(tmp_path, gunicorn_args=extra) as served:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(served.base / "gunicorn.sock"))
            s.sendall(b"GARBAGE \x01\x02 LINE\r\n\r\n")
            s.settimeout(10)
            assert s.recv(100).startswith(b"HTTP/1.1 400")
        time.sleep(0.5)
    log = served.gunicorn_log.read_text(errors="replace")
    assert ("Invalid request" in log) is logged, log[-1000:]
