"""The browser tests' gunicorn helper (tests/browser/source_fixtures.py), on a stand-in app
(tests/browser/slow_wsgi.py) that is slow where a loaded machine is: it says the server is ready
only with none of its own requests left to be served."""

from __future__ import annotations

import os
from pathlib import Path

from .source_fixtures import gunicorn

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
