"""tipline.server.wsgi:app for the browser privacy test (tests/browser/test_source_privacy.py),
wrapped so the test can prove what reached the server: each request's method, path and the three
identifying headers are appended, one JSON line each, to the file named by
``TIPLINE_TEST_RECORD`` (outside the server's data, temp and log folders, which the test scans).

``TIPLINE_TEST_PLANT=log`` is the positive control for that scan: the Referer is also printed to
the server's output, the leak the test must then find in the server's log.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

from tipline.server.wsgi import app as flask_app

RECORD = os.environ["TIPLINE_TEST_RECORD"]
PLANT = os.environ.get("TIPLINE_TEST_PLANT", "")
if PLANT not in ("", "log"):
    raise SystemExit(f"unknown plant {PLANT!r}")
HEADERS = ("HTTP_REFERER", "HTTP_USER_AGENT", "HTTP_X_FORWARDED_FOR")


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    seen = {"method": environ["REQUEST_METHOD"], "path": environ.get("PATH_INFO", "")}
    seen.update({h: environ.get(h, "") for h in HEADERS})
    with open(RECORD, "a", encoding="utf-8") as record:
        record.write(json.dumps(seen) + "\n")
    if PLANT == "log" and seen["HTTP_REFERER"]:
        print("planted: referer", seen["HTTP_REFERER"], file=sys.stderr, flush=True)
    return flask_app(environ, start_response)
