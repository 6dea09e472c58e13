"""The Chromium driver (tests/browser/drivers.py): a click that loads a page returns with that
page there to be read, even when its body comes some time after its headers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from playwright.sync_api import Browser

from .drivers import PlaywrightDriver
from .source_fixtures import local_server

pytestmark = pytest.mark.browser
FORM = b'<!doctype html><html lang="en"><title>form</title><form method="post" action="/next">'
FORM += b'<button id="go">Go</button></form></html>'
NEXT = b'<!doctype html><html lang="en"><title>next</title><main id="next">Next</main></html>'


@contextmanager
def late_bodies() -> Iterator[str]:
    """A server whose answer to the form sends its headers at once and its body a second
    later, as gunicorn's two writes do when the worker loses the CPU between them."""

    class Handler(BaseHTTPRequestHandler):
        def _send(self, body: bytes, pause: float) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.flush()
            time.sleep(pause)
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._send(FORM, 0)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._send(NEXT, 1)

        def log_message(self, *args: Any) -> None:
            pass

    with local_server(Handler) as port:
        yield f"http://127.0.0.1:{port}"


def test_a_click_returns_with_the_page_it_loaded(chromium: Browser) -> None:
    with late_bodies() as url:
        context = chromium.new_context(java_script_enabled=False)
        driver = PlaywrightDriver(context.new_page(), "safest")
        driver.goto(url + "/form")
        driver.click("#go")
        assert driver.url().endswith("/next")
        assert driver.visible("#next")
        context.close()
