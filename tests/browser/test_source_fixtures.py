"""The browser tests' gunicorn helper (tests/browser/source_fixtures.py), on a stand-in app
(tests/browser/slow_wsgi.py) that is slow where a loaded machine is: it says the server is ready
only with none of its own requests left to be served, and it gives gunicorn the time its
graceful stop takes."""

from __future__ import annotations

import os
import threading
import urllib.request
from pathlib import Path

import pytest

from .drivers import wait_until
from .slow_wsgi import SLOW_SECONDS
from .source_fixtures import STOP_SECONDS, gunicorn

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.browser.slow_wsgi:app"


def _env(record: Path) -> dict[str, str]:
    return {
        "TIPLINE_TEST_RECORD": str(record),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }


def test_once_ready_no_request_of_the_helper_is_left(tmp_path: Path) -> None:
    """Each worker's first request takes 3 s: a helper that gave up on a request after 1 s and
    asked again left one queued, which a worker served after the test had begun (and a test
    that records what reached the server found it among the browser's)."""
    record = tmp_path / "record"
    with gunicorn(_env(record), tmp_path / "server.log", "/", app=APP):
        record.write_text("")  # from here on, only what the test sends: nothing
    # Stopped gracefully, so whatever a worker had taken on was served and recorded.
    assert record.read_text() == ""


@pytest.mark.slow
def test_a_stop_waits_for_a_worker_to_finish(tmp_path: Path) -> None:
    """A request that takes 12 s is under way when the server is told to stop: gunicorn lets
    it finish, and the helper waits for that (it used to give up after 10 s)."""
    assert SLOW_SECONDS + 5 < STOP_SECONDS
    record = tmp_path / "record"
    with gunicorn(_env(record), tmp_path / "server.log", "/", app=APP) as url:
        slow = threading.Thread(
            target=lambda: urllib.request.urlopen(url + "/slow", timeout=60).read(), daemon=True
        )
        slow.start()
        wait_until(lambda: "began /slow" in record.read_text(), 30, "the slow request")
    assert "served /slow" in record.read_text()
    slow.join(30)
