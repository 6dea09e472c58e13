"""tipline.server.wsgi:app for the watched-server tests (tests/browser/test_watched_server.py),
with the leak named by ``TIPLINE_TEST_PLANT`` planted, as a positive control:

- ``tee``: every request body is copied into an unnamed temporary file (``TemporaryFile`` in
  TMPDIR, unlinked at once) before the app reads it back from there;
- ``werkzeug``: Werkzeug's default stream factory is put back, which spools uploads over 500 KB
  to an unnamed temporary file in plaintext.

Unset, it is the app exactly as deployed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from typing import Any

from flask import Request

from tipline.server.spooled import SealingRequest
from tipline.server.wsgi import app as flask_app

PLANT = os.environ.get("TIPLINE_TEST_PLANT", "")


def tee(inner: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed when the request ends
        shutil.copyfileobj(environ["wsgi.input"], spool)
        spool.flush()
        environ["CONTENT_LENGTH"] = str(spool.tell())
        spool.seek(0)
        environ["wsgi.input"] = spool
        return inner(environ, start_response)

    return wsgi


if PLANT == "tee":
    app: Any = tee(flask_app)
elif PLANT == "werkzeug":
    SealingRequest._get_file_stream = Request._get_file_stream  # type: ignore[method-assign]
    app = flask_app
elif PLANT:
    raise SystemExit(f"unknown plant {PLANT!r}")
else:
    app = flask_app
