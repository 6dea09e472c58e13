"""The proof-of-work in Chromium (docs/SPEC.md §10): with it on, at the default difficulty, the
page fetches a challenge, its Worker solves it while the page says so, and the upload starts
with the solution and succeeds; with it off (the session's ordinary server) the page fetches no
challenge and sends nothing more than before; with it on and WebAssembly gone (Safer), the page
takes the server-side form path, which the proof-of-work does not touch.

The solve time the page measured is printed (``pytest -s``) for docs/ADMIN.md's figures.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Playwright, Request

from tipline.server import db, settings

from ..server.replies import submission_ids
from .debian_chromium import CHROMIUM, CHROMIUM_ARGS
from .source_fixtures import Server, gunicorn, prepare_site

pytestmark = pytest.mark.browser
MESSAGE = "Pow-Marker-3c1d: the minutes of the March meeting"
# Every text the progress line shows, in order (the check's may last only a moment).
RECORD_TEXTS = """
window.__texts = [];
document.addEventListener("DOMContentLoaded", () => {
  const text = document.getElementById("progress-text");
  if (!text) return;
  new MutationObserver(() => window.__texts.push(text.textContent))
    .observe(text, { childList: true, characterData: true, subtree: true });
});
"""


@pytest.fixture(scope="module")
def pow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server like ``source_server``, with the admin's proof-of-work setting ``on`` and the
    default difficulty (POW_DIFFICULTY, 16 bits)."""
    site = prepare_site(tmp_path_factory.mktemp("pow-server"), pow="on")
    try:
        with gunicorn(site.env, site.log, "/") as url:
            yield site.server(url)
    finally:
        db.engine_of(site.app).dispose()


def _send(browser: Browser, server: Server) -> tuple[list[Request], Any]:
    """Send a message through the page; the requests the page made, and the page."""
    context = browser.new_context()
    context.add_init_script(RECORD_TEXTS)
    page = context.new_page()
    requests: list[Request] = []
    page.on("request", lambda r: requests.append(r))
    page.goto(server.url + "/submit")
    page.locator("#send:enabled").wait_for(timeout=60_000)
    page.get_by_label("Your message").fill(MESSAGE)
    page.get_by_role("button", name="Send").click()
    page.locator("#done, #page-error:not([hidden])").first.wait_for(timeout=120_000)
    assert page.locator("#done").is_visible(), page.inner_text("#page-error")
    return requests, page


def _upload_start(requests: list[Request]) -> dict[str, Any]:
    starts = [r for r in requests if r.method == "POST" and r.url.endswith("/api/source/uploads")]
    assert len(starts) == 1
    body: dict[str, Any] = json.loads(starts[0].post_data or "{}")
    return body


def test_with_pow_on_the_page_solves_and_sends(chromium: Browser, pow_server: Server) -> None:
    before = submission_ids(pow_server.app)
    requests, page = _send(chromium, pow_server)
    assert page.get_attribute("#submit-form", "data-pow") == "yes"
    assert [r.url for r in requests if r.url.endswith("/api/source/pow")]
    start = _upload_start(requests)
    assert start["pow_challenge"] and start["pow_nonce"]
    texts = page.evaluate("window.__texts")
    checking = texts.index("Checking your browser can send…")  # said while it solved
    assert texts[checking + 1] == "Locking your tip in your browser…", texts
    urls = [r.url for r in requests]
    asked = [i for i, u in enumerate(urls) if u.endswith("/api/source/pow")]
    started = [i for i, u in enumerate(urls) if u.endswith("/api/source/uploads")]
    assert asked[0] < started[0]  # the challenge came before the upload's start
    assert len(submission_ids(pow_server.app)) == len(before) + 1
    took = page.get_attribute("#progress-box", "data-pow-ms")
    print(f"\npow: Chromium (Standard) solved 16 bits in {took} ms")
    page.context.close()


def test_with_pow_off_nothing_changes(chromium: Browser, source_server: Server) -> None:
    """The control of the test above: the same journey on a server with the setting off."""
    before = submission_ids(source_server.app)
    requests, page = _send(chromium, source_server)
    assert page.get_attribute("#submit-form", "data-pow") == "no"
    assert not [r.url for r in requests if "/api/source/pow" in r.url]
    start = _upload_start(requests)
    assert "pow_challenge" not in start and "pow_nonce" not in start
    assert "Checking your browser can send…" not in page.evaluate("window.__texts")
    assert len(submission_ids(source_server.app)) == len(before) + 1
    page.context.close()


def test_with_pow_on_the_server_side_path_is_untouched(
    playwright: Playwright, pow_server: Server
) -> None:
    """Safer (no JIT, so no WebAssembly): the page takes the plain form, which the
    proof-of-work does not gate, and the tip is stored."""
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--js-flags=--jitless"]
    )
    try:
        context = browser.new_context()
        page = context.new_page()
        requests: list[Request] = []
        page.on("request", lambda r: requests.append(r))
        before = submission_ids(pow_server.app)
        page.goto(pow_server.url + "/submit")
        page.locator("#send:enabled").wait_for(timeout=60_000)
        assert page.get_attribute("#submit-form", "data-sealing") == "server"
        page.get_by_label("Your message").fill(MESSAGE)
        page.get_by_role("button", name="Send").click()
        page.wait_for_load_state()
        page.wait_for_url("**/submit**", timeout=60_000)
        assert len(submission_ids(pow_server.app)) == len(before) + 1
        assert not [r.url for r in requests if "/api/source/pow" in r.url]
    finally:
        browser.close()


@contextlib.contextmanager
def _form_switch(server: Server) -> Iterator[None]:
    """The admin's switch that makes the server-side form ask for the proof-of-work too."""
    with server.app.test_request_context():
        settings.save(db.session(), settings.Settings(pow="on", pow_form=True))
    try:
        yield
    finally:
        with server.app.test_request_context():
            settings.save(db.session(), settings.Settings(pow="on"))


def test_the_form_switch_closes_safer_and_says_so(
    playwright: Playwright, pow_server: Server
) -> None:
    """With the form switch on, a browser without WebAssembly is told plainly and cannot send
    (Send stays off); the control is the test above, where the same browser sends."""
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--js-flags=--jitless"]
    )
    try:
        with _form_switch(pow_server):
            page = browser.new_page()
            page.goto(pow_server.url + "/submit")
            notice = page.locator("#pow-form-notice")
            assert "needs JavaScript and WebAssembly" in notice.inner_text()
            page.wait_for_function(
                "document.getElementById('path-notice').textContent.includes('WebAssembly')",
                timeout=60_000,
            )
            assert page.locator("#send").is_disabled()
    finally:
        browser.close()


def test_the_form_switch_has_the_form_solve_first(chromium: Browser, pow_server: Server) -> None:
    """With WebAssembly but no verified manifest (the page's crypto cannot start, so it takes
    the form), the form switch has the page solve a challenge before the form leaves, and the
    server stores the tip sealed on arrival."""
    with _form_switch(pow_server):
        context = chromium.new_context()
        page = context.new_page()
        # A manifest the page cannot verify: the page falls back to the server-side form.
        page.route("**/submit", lambda route: route.fulfill(
            response=(r := route.fetch()),
            body=r.text().replace('data-manifest="', 'data-manifest="x'),
        ))  # fmt: skip
        requests: list[Request] = []
        page.on("request", lambda r: requests.append(r))
        before = submission_ids(pow_server.app)
        page.goto(pow_server.url + "/submit")
        page.locator("#send:enabled").wait_for(timeout=60_000)
        assert page.get_attribute("#submit-form", "data-sealing") == "server"
        page.get_by_label("Your message").fill(MESSAGE)
        posted = lambda r: r.request.method == "POST" and r.url.endswith("/submit")  # noqa: E731
        with page.expect_response(posted, timeout=60_000) as answer:
            page.get_by_role("button", name="Send").click()
        assert answer.value.status == 200
        page.wait_for_load_state()
        assert len(submission_ids(pow_server.app)) == len(before) + 1, page.inner_text("main")
        posts = [r for r in requests if r.method == "POST" and r.url.endswith("/submit")]
        sent = posts[-1].post_data_buffer or b""
        assert re.search(rb'name="pow_nonce"\r\n\r\n[A-Za-z0-9+/]{11}=\r\n', sent), sent[:600]
        assert [r for r in requests if r.url.endswith("/api/source/pow")]
        context.close()
