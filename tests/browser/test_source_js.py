"""The client-side path in Chromium with JavaScript and WebAssembly (Tor Browser's Standard
level): the page seals in the crypto Worker, uploads only ciphertext, shows a codename made in
the browser, and opens replies in the browser.

Needs the browser crypto (static/js/worker.js and libsodium.js in static/build/); without it
these tests fail, they do not skip.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Request

from ..server.replies import add_reply, open_stored, submission_ids
from .source_fixtures import Server, new_context

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
MESSAGE = "Browser-Plaintext-Marker-91e2: the second ledger is in the basement"
FILE_A = b"File-A-Marker-0f0f " * 3000
FILE_B = b"File-B-Marker-7777 " * 9000


@pytest.fixture(autouse=True)
def _browser_crypto_present() -> None:
    worker = ROOT / "static" / "js" / "worker.js"
    if not worker.exists():
        pytest.fail(f"{worker} is missing: the browser crypto is not installed (make static)")


def test_js_submission_seals_in_the_browser(
    chromium: Browser,
    source_server: Server,
    tmp_path: Path,
) -> None:
    (tmp_path / "a.txt").write_bytes(FILE_A)
    (tmp_path / "b.bin").write_bytes(FILE_B)
    context = new_context(chromium)
    page = context.new_page()
    bodies: list[bytes] = []

    def capture(request: Request) -> None:
        body = request.post_data_buffer
        if body:
            bodies.append(body)

    page.on("request", capture)
    page.goto(source_server.url + "/submit")
    page.locator("#path-notice").wait_for(state="visible")
    assert "Your browser will encrypt" in page.inner_text("#path-notice")
    before = submission_ids(source_server.app)
    page.get_by_label("Your message").fill(MESSAGE)
    page.get_by_label("Files (optional)").set_input_files(
        [str(tmp_path / "a.txt"), str(tmp_path / "b.bin")]
    )
    page.get_by_role("button", name="Encrypt and send").click()
    page.locator("#done").wait_for(state="visible", timeout=60_000)
    codename = page.inner_text("#codename")
    assert len(codename.split()) == 7
    assert bodies, "no request bodies were captured"
    for body in bodies:
        for marker in (b"Browser-Plaintext-Marker", b"File-A-Marker", b"File-B-Marker"):
            assert marker not in body
        assert codename.encode() not in body
    (new,) = submission_ids(source_server.app) - before
    inner, files = open_stored(source_server.app, source_server.journalist, new)
    assert inner.sealed_by == "browser" and inner.message == MESSAGE
    assert [a.name for a in inner.attachments] == ["a.txt", "b.bin"]
    assert files == [FILE_A, FILE_B]
    context.close()

    add_reply(source_server.app, codename, source_server.journalist, "JS-Reply-Marker: thanks")
    context = new_context(chromium)
    page = context.new_page()
    sent: list[bytes] = []
    page.on("request", lambda r: sent.append(r.post_data_buffer or b""))
    page.goto(source_server.url + "/login")
    page.get_by_label("Your codename").fill(codename)
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("JS-Reply-Marker: thanks").wait_for(timeout=30_000)
    assert all(codename.encode() not in body for body in sent)  # never left the browser

    # Logged in, the source sends again: still sealed in the browser, with the same reply key.
    page.goto(source_server.url + "/submit")
    page.locator("#path-notice").wait_for(state="visible")
    before = submission_ids(source_server.app)
    page.get_by_label("Your message").fill("Second-Marker: one more thing")
    page.get_by_role("button", name="Encrypt and send").click()
    page.locator("#done").wait_for(state="visible", timeout=60_000)
    (second,) = submission_ids(source_server.app) - before
    again, _ = open_stored(source_server.app, source_server.journalist, second)
    assert again.sealed_by == "browser" and again.message == "Second-Marker: one more thing"
    assert again.reply_public_key == inner.reply_public_key
    assert all(b"Second-Marker" not in body for body in sent)
    context.close()
