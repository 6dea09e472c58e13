"""The source pages over a link like a Tor circuit (tests/browser/tap.py: 800 ms round trips,
500 kB/s shared, a round trip to open each connection), at Tor Browser's Standard level in
Debian's Chromium. The source presses Send, or Enter in the codename field, from the first
moment the page shows, again and again: nothing may leave in the clear before the page has
decided, and said, which path it takes. Every byte the browser sent is searched.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from ..server.replies import add_reply, open_stored, submission_ids
from .source_fixtures import Server
from .tap import tapped

pytestmark = [pytest.mark.browser, pytest.mark.slow]
RTT, RATE = 0.8, 500_000
MARKER = "Early-Press-Marker-5e1a: the lorries leave at dawn"


def _port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _press_send(page: Page) -> None:
    """A real click where the Send button is, whether or not it is enabled yet."""
    page.locator("#send").scroll_into_view_if_needed()
    box = page.locator("#send").bounding_box()
    if box is not None:
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_pressing_send_early_never_sends_plaintext(
    chromium: Browser, source_server: Server, tmp_path: Path
) -> None:
    (tmp_path / "early.txt").write_bytes(b"Early-File-Marker-77 " * 2000)
    with tapped(_port(source_server), RTT, RATE) as tap:
        context = chromium.new_context()
        page = context.new_page()
        before = submission_ids(source_server.app)
        page.goto(tap.url + "/submit", wait_until="commit")
        page.locator("#message").wait_for(state="visible", timeout=60_000)
        shown = time.monotonic()
        assert page.locator("#send").is_disabled()
        assert "Preparing encryption" in page.inner_text("#path-notice")
        page.fill("#message", MARKER)
        page.set_input_files("#files", str(tmp_path / "early.txt"))
        presses_while_held = 0
        while page.locator("#send").is_disabled():
            _press_send(page)
            presses_while_held += 1
            page.wait_for_timeout(100)
        ready = time.monotonic() - shown
        assert presses_while_held >= 3, "the page was ready before it could be pressed early"
        assert "Your browser will lock your tip" in page.inner_text("#path-notice")
        assert b"POST /submit" not in tap.sent()  # the plain form never went
        if not page.locator("#progress-box").is_visible():
            _press_send(page)
        page.locator("#done").wait_for(state="visible", timeout=180_000)
        codename = page.inner_text("#codename")
        sent = tap.sent()
        assert b"POST /api/source/uploads" in sent  # the capture saw the upload
        for secret in (MARKER.encode(), b"Early-File-Marker-77", codename.encode()):
            assert secret not in sent
        (new,) = submission_ids(source_server.app) - before
        inner, _files = open_stored(source_server.app, source_server.journalist, new)
        assert inner.sealed_by == "browser" and inner.message == MARKER
        print(f"ready {ready:.1f} s after the form showed, {presses_while_held} early presses")
        context.close()

        # The codename, typed and entered as early as the login page allows.
        add_reply(source_server.app, codename, source_server.journalist, "Early-Reply")
        tap.clear()
        context = chromium.new_context()
        page = context.new_page()
        page.goto(tap.url + "/login", wait_until="commit")
        page.locator("#codename-input").wait_for(state="visible", timeout=60_000)
        page.fill("#codename-input", codename)
        presses_while_held = 0
        while page.locator("#send").is_disabled():
            page.focus("#codename-input")
            page.keyboard.press("Enter")
            presses_while_held += 1
            page.wait_for_timeout(100)
        assert presses_while_held >= 3
        assert b"POST /login" not in tap.sent()
        page.keyboard.press("Enter")
        page.get_by_text("Early-Reply").wait_for(timeout=120_000)
        assert b"POST /api/source/login" in tap.sent()
        assert codename.encode() not in tap.sent()
        context.close()


def test_where_the_worker_cannot_start_the_page_says_so_before_anything_is_sent(
    chromium: Browser, source_server: Server
) -> None:
    """The login page falls back to the server: the codename is posted only after the page
    has said that the server will use it for one page, and only when pressed again."""
    with tapped(_port(source_server), RTT, RATE) as tap:
        context = chromium.new_context()
        context.route("**/static/build/assets/worker.*.js", lambda route: route.fulfill(status=404))
        page = context.new_page()
        page.goto(tap.url + "/login", wait_until="commit")
        page.locator("#codename-input").wait_for(state="visible", timeout=60_000)
        words = "abacus abdomen abdominal abide abiding ability ablaze"
        page.fill("#codename-input", words)
        while page.locator("#send").is_disabled():
            page.focus("#codename-input")
            page.keyboard.press("Enter")
            page.wait_for_timeout(100)
        assert "the server uses your codename to open them for this one page" in page.inner_text(
            "#path-notice"
        )
        assert words.encode() not in tap.sent()  # said first; nothing sent yet
        page.keyboard.press("Enter")
        page.locator("#page-error").wait_for(timeout=60_000)  # not a known codename
        assert b"POST /login" in tap.sent()  # then, and only then, the form went
        context.close()
