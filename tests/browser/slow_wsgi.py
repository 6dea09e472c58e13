"""A WSGI app for the tests of the browser tests' gunicorn helper
(tests/browser/test_source_fixtures.py): each worker's first request takes FIRST_SECONDS, as one
does on a loaded machine, and ``/slow`` takes SLOW_SECONDS, longer than a stop used to be
given. Each request it served is appended, once done, to the file named by
``TIPLINE_TEST_RECORD``; ``/slow`` also says there when it began.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

FIRST_SECONDS = 3.0
SLOW_SECONDS = 12.0
_first = True


def _note(line: str) -> None:
    with open(os.environ["TIPLINE_TEST_RECORD"], "a", encoding="utf-8") as record:
        record.write(line + "\n")


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    global _first
    path = environ.get("PATH_INFO", "")
    if path == "/slow":
        _note("began /slow")
        time.sleep(SLOW_SECONDS)
    elif _first:
        _first = False
        time.sleep(FIRST_SECONDS)
    _note(f"served {path}")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
