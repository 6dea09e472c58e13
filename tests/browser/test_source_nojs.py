"""The source interface in Chromium without JavaScript (Tor Browser's Safest level) and
without WebAssembly (Safer), served by gunicorn: the server seals on arrival, stores no
plaintext anywhere. That it keeps no trace of the visitor's address, browser or referrer is
tests/browser/test_source_privacy.py's, on a server of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from ..server.replies import add_reply, open_stored, submission_ids
from .source_fixtures import Server, every_file, new_context

pytestmark = pytest.mark.browser

MESSAGE = "Plaintext-Marker-7d1f: the guards change at midnight"
SMALL = b"Small-File-Marker-55aa " * 10
BIG = b"Big-File-Marker-c3c3 " * 40_000  # ~840 KB: Werkzeug would spool this to disk


def _submit_form(page: Any, tmp_path: Path, message: str) -> str:
    (tmp_path / "notes.txt").write_bytes(SMALL)
    (tmp_path / "scan.pdf").write_bytes(BIG)
    page.get_by_label("Your message").fill(message)
    page.get_by_label("Files (optional)").set_input_files(
        [str(tmp_path / "notes.txt"), str(tmp_path / "scan.pdf")]
    )
    page.get_by_role("button", name="Send").click()
    page.wait_for_load_state()
    assert page.locator("#codename").count() == 1, page.inner_text("main")
    assert "The server locked it the moment it arrived" in page.content()
    return page.inner_text("#codename")


def test_no_js_submission_and_reply(
    chromium: Browser,
    source_server: Server,
    tmp_path: Path,
) -> None:
    before = submission_ids(source_server.app)
    context = new_context(chromium, java_script_enabled=False)
    page = context.new_page()
    page.goto(source_server.url + "/submit")
    assert "runs no scripts here" in page.inner_text("main")
    codename = _submit_form(page, tmp_path, MESSAGE)
    assert len(codename.split()) == 7
    (new,) = submission_ids(source_server.app) - before
    inner, files = open_stored(source_server.app, source_server.journalist, new)
    assert inner.sealed_by == "server" and inner.message == MESSAGE
    assert [a.name for a in inner.attachments] == ["notes.txt", "scan.pdf"]
    assert files == [SMALL, BIG]
    # No plaintext in the blob store, the temp folders or the database.
    markers = [b"Plaintext-Marker-7d1f", b"Small-File-Marker-55aa", b"Big-File-Marker-c3c3"]
    for path in every_file(source_server.data_dir, source_server.tmp_dir):
        data = path.read_bytes()
        for marker in markers:
            assert marker not in data, f"{marker!r} in {path}"
    context.close()

    add_reply(source_server.app, codename, source_server.journalist, "Reply-Marker: we read it")
    context = new_context(chromium, java_script_enabled=False)
    page = context.new_page()
    page.goto(source_server.url + "/login")
    page.get_by_label("Your codename", exact=True).fill(codename)
    # Each click loads a page; its click returns when that page has committed, maybe before
    # its body came, so each read waits for the page to be parsed (tests/browser/drivers.py).
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state("domcontentloaded")
    assert "Reply-Marker: we read it" in page.inner_text("main")
    page.get_by_role("button", name="Delete this reply").click()
    page.wait_for_load_state("domcontentloaded")
    assert "No replies yet" in page.inner_text("main")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_load_state("domcontentloaded")
    assert "close Tor Browser" in page.inner_text("main")
    context.close()


def test_without_webassembly_the_form_is_used_and_says_so(
    chromium: Browser,
    source_server: Server,
    tmp_path: Path,
) -> None:
    before = submission_ids(source_server.app)
    context = new_context(chromium)
    context.add_init_script("delete globalThis.WebAssembly;")
    page = context.new_page()
    page.goto(source_server.url + "/submit")
    page.locator("#send:enabled").wait_for(timeout=60_000)
    notice = page.locator("#path-notice")
    assert "does not let this page lock your tip itself" in notice.inner_text()
    _submit_form(page, tmp_path, "sent at the Safer level")
    (new,) = submission_ids(source_server.app) - before
    inner, _files = open_stored(source_server.app, source_server.journalist, new)
    assert inner.sealed_by == "server" and inner.message == "sent at the Safer level"
    context.close()


def test_pages_are_usable_by_keyboard_and_on_a_phone(
    chromium: Browser,
    source_server: Server,
) -> None:
    context = new_context(
        chromium, java_script_enabled=False, viewport={"width": 360, "height": 740}
    )
    page = context.new_page()
    page.goto(source_server.url + "/")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360  # nothing forces sideways scrolling on a small phone
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the content"
    page.goto(source_server.url + "/submit")
    for field in ("message", "files"):
        assert page.locator(f"label[for={field}]").count() == 1
    context.close()


def test_when_the_worker_cannot_start_the_form_is_used_and_says_so(
    chromium: Browser, source_server: Server
) -> None:
    context = new_context(chromium)
    context.route("**/static/build/assets/worker.*.js", lambda route: route.fulfill(status=404))
    page = context.new_page()
    page.goto(source_server.url + "/submit")
    page.locator("#send:enabled").wait_for(timeout=60_000)
    notice = page.locator("#path-notice")
    assert "could not get ready to lock your tip itself" in notice.inner_text()
    assert page.get_attribute("#submit-form", "data-sealing") == "server"  # not intercepted
    context.close()
