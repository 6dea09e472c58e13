"""The client-side path in Chromium with JavaScript and WebAssembly (Tor Browser's Standard
level): the page seals in the crypto Worker, uploads only ciphertext, shows a codename made in
the browser, and opens replies in the browser.

Needs the browser crypto (static/js/worker.js and libsodium.js in static/build/); without it
these tests fail, they do not skip.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import os
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Route

from tipline.crypto import keys, manifest
from tipline.crypto.encoding import b64e
from tipline.crypto.format import parse_header
from tipline.server import create_app, db, keyset

from ..server.replies import add_reply, open_stored, submission_ids
from .source_fixtures import Server, gunicorn, new_context
from .tap import tapped

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


def _port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _not_seen(envelope: bytes, sent: bytes, size: int = 64 * 1024) -> list[int]:
    """The offsets of the stored envelope's pieces that do NOT appear in what was sent: the
    header goes as base64 in the JSON that creates the upload, the rest as raw chunks."""
    head = len(parse_header(envelope).encode())
    missing = [] if b64e(envelope[:head]).encode() in sent else [0]
    return missing + [
        i for i in range(head, len(envelope), size) if envelope[i : i + size] not in sent
    ]


def test_js_submission_seals_in_the_browser(
    chromium: Browser,
    source_server: Server,
    tmp_path: Path,
) -> None:
    """Every byte the browser put on the wire is recorded by a TCP tap (tests/browser/tap.py),
    whatever the body's type: the capture must hold every byte of the envelope the server
    stored, and no plaintext and no codename anywhere."""
    (tmp_path / "a.txt").write_bytes(FILE_A)
    (tmp_path / "b.bin").write_bytes(FILE_B)
    with tapped(_port(source_server)) as tap:
        context = chromium.new_context()
        page = context.new_page()
        page.goto(tap.url + "/submit")
        page.locator("#send:enabled").wait_for(timeout=60_000)
        assert "Your browser will lock your tip" in page.inner_text("#path-notice")
        before = submission_ids(source_server.app)
        page.get_by_label("Your message").fill(MESSAGE)
        page.get_by_label("Files (optional)").set_input_files(
            [str(tmp_path / "a.txt"), str(tmp_path / "b.bin")]
        )
        page.get_by_role("button", name="Send").click()
        page.locator("#done").wait_for(state="visible", timeout=60_000)
        codename = page.inner_text("#codename")
        assert len(codename.split()) == 7
        sent = tap.sent()
        (new,) = submission_ids(source_server.app) - before
        with source_server.app.extensions["tipline.blobs"].open("submissions", new) as blob:
            stored = blob.read()
        assert len(stored) > 2 * 64 * 1024
        assert _not_seen(stored, sent) == []  # the capture saw every stored byte go out
        for marker in (b"Browser-Plaintext-Marker", b"File-A-Marker", b"File-B-Marker"):
            assert marker not in sent
        assert codename.encode() not in sent
        inner, files = open_stored(source_server.app, source_server.journalist, new)
        assert inner.sealed_by == "browser" and inner.message == MESSAGE
        assert [a.name for a in inner.attachments] == ["a.txt", "b.bin"]
        assert files == [FILE_A, FILE_B]
        context.close()

        add_reply(source_server.app, codename, source_server.journalist, "JS-Reply-Marker: thanks")
        tap.clear()
        context = chromium.new_context()
        page = context.new_page()
        page.goto(tap.url + "/login")
        page.locator("#send:enabled").wait_for(timeout=60_000)
        page.get_by_label("Your codename", exact=True).fill(codename)
        page.get_by_role("button", name="Log in").click()
        page.get_by_text("JS-Reply-Marker: thanks").wait_for(timeout=30_000)
        # The JS view offers what the no-JS one does.
        assert page.locator("#source-actions").is_visible()
        assert page.get_by_role("button", name="Log out").is_visible()
        assert page.get_by_role("link", name="Send more").is_visible()
        assert b"/api/source/login" in tap.sent()  # the capture did see the log-in
        assert codename.encode() not in tap.sent()  # the codename never left the browser

        # Logged in, the source sends again: still sealed in the browser, with the same key.
        page.goto(tap.url + "/submit")
        page.locator("#send:enabled").wait_for(timeout=60_000)
        before = submission_ids(source_server.app)
        page.get_by_label("Your message").fill("Second-Marker: one more thing")
        page.get_by_role("button", name="Send").click()
        page.locator("#done").wait_for(state="visible", timeout=60_000)
        assert page.locator("#done-actions").is_visible()  # no codename step the second time
        assert not page.locator("#codename-box").is_visible()
        (second,) = submission_ids(source_server.app) - before
        again, _ = open_stored(source_server.app, source_server.journalist, second)
        assert again.sealed_by == "browser" and again.message == "Second-Marker: one more thing"
        assert again.reply_public_key == inner.reply_public_key
        assert b"Second-Marker" not in tap.sent()
        context.close()


def test_the_tap_sees_plaintext_when_there_is_some(
    chromium: Browser, source_server: Server
) -> None:
    """Positive controls for the capture above: a Blob body sent by fetch (what the upload
    sends) and a plain form posted with scripts off (Safest) are both seen, marker and all."""
    with tapped(_port(source_server)) as tap:
        context = chromium.new_context()
        page = context.new_page()
        page.goto(tap.url + "/submit")  # a page whose CSP allows fetch() to its origin
        # To a place that must read the body to answer (the log-in parses its JSON, then refuses
        # the token): a PUT to no route got its 404 before the body was read, and Chromium then
        # dropped the body unsent (seen in 2 of 6 runs).
        status = page.evaluate(
            """() => fetch("/api/source/login", {method: "POST",
                 headers: {"Content-Type": "application/json", "X-CSRFToken":
                           document.querySelector('meta[name="csrf-token"]').content},
                 body: new Blob([new TextEncoder().encode(
                     '{"login_token": "Planted-Blob-Marker-31"}')])})
               .then((r) => r.status)"""
        )
        assert status == 400
        assert tap.seen(b"Planted-Blob-Marker-31")
        context.close()
        context = chromium.new_context(java_script_enabled=False)
        page = context.new_page()
        page.goto(tap.url + "/submit")
        page.get_by_label("Your message").fill("Planted-Form-Marker-32")
        page.get_by_role("button", name="Send").click()
        page.locator("#codename").wait_for()
        assert tap.seen(b"Planted-Form-Marker-32")
        context.close()


def test_a_large_file_streams_with_bounded_memory(
    chromium: Browser,
    source_server: Server,
    tmp_path: Path,
) -> None:
    """Sealing and sending are one stream: for a file many chunks long, the page never holds
    more than a few chunks of ciphertext (counted by the upload in JS, exposed on the progress
    box), and the stored envelope opens with the journalist key to the exact bytes."""
    big = os.urandom(64 << 20)
    (tmp_path / "big.bin").write_bytes(big)
    context = chromium.new_context()
    page = context.new_page()
    bodies: list[int] = []

    def record(route: Route) -> None:
        # A route makes Playwright hold each chunk's body (a Blob) for the test to measure.
        if route.request.method == "PUT":
            bodies.append(len(route.request.post_data_buffer or b""))
        route.continue_()

    context.route("**/api/source/uploads/*", record)
    page.goto(source_server.url + "/submit")
    page.locator("#send:enabled").wait_for(timeout=60_000)
    chunk = int(page.get_attribute("#submit-form", "data-chunk-size") or 0)
    assert 64 << 10 <= chunk <= 8 << 20
    before = submission_ids(source_server.app)
    page.get_by_label("Files (optional)").set_input_files(str(tmp_path / "big.bin"))
    page.get_by_role("button", name="Send").click()
    page.locator("#done").wait_for(state="visible", timeout=120_000)
    peak = int(page.get_attribute("#progress-box", "data-peak-held") or 0)
    assert 0 < peak <= 4 * chunk and 4 * chunk < len(big), (peak, chunk)
    assert max(bodies) <= chunk
    (new,) = submission_ids(source_server.app) - before
    stored = source_server.app.extensions["tipline.blobs"].path("submissions", new).stat().st_size
    header = 11 + 96 + 24 + 32  # one recipient
    assert sum(bodies) == stored - header  # every chunk the server stored was measured
    inner, files = open_stored(source_server.app, source_server.journalist, new)
    assert inner.sealed_by == "browser" and [a.name for a in inner.attachments] == ["big.bin"]
    assert files == [big]
    context.close()


def test_cancel_mid_stream_stores_nothing(
    chromium: Browser,
    source_server: Server,
    tmp_path: Path,
) -> None:
    """Cancel while a chunk is on its way: the progress bar had moved, the page says nothing was
    stored, and the server dropped the partial upload."""
    (tmp_path / "big.bin").write_bytes(os.urandom(24 << 20))
    context = new_context(chromium)
    page = context.new_page()
    held: list[Route] = []
    puts: list[str] = []

    def hold_second(route: Route) -> None:
        if route.request.method != "PUT":
            route.fallback()
            return
        puts.append(route.request.url)
        if len(puts) == 2:
            held.append(route)  # answered only after the cancel
            return
        route.fallback()

    page.route("**/api/source/uploads/*", hold_second)
    page.goto(source_server.url + "/submit")
    page.locator("#send:enabled").wait_for(timeout=60_000)
    before = submission_ids(source_server.app)
    page.get_by_label("Files (optional)").set_input_files(str(tmp_path / "big.bin"))
    page.get_by_role("button", name="Send").click()
    for _ in range(1200):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the second chunk was never sent"
    assert page.eval_on_selector("#progress", "e => e.value") > 0  # the first one counted
    upload_id = puts[0].split("/uploads/", 1)[1].split("?", 1)[0]
    store = source_server.app.extensions["tipline.blobs"]
    assert store.upload_path(upload_id).exists()
    page.get_by_role("button", name="Cancel").click()
    page.get_by_text("Cancelled. Nothing was stored.").wait_for(timeout=30_000)
    held[0].abort("connectionreset")
    assert page.locator("#submit-form").is_visible()
    assert len(puts) == 2  # nothing more was sent after the cancel
    assert not store.upload_path(upload_id).exists()
    assert submission_ids(source_server.app) == before
    context.close()


def test_a_page_from_before_a_key_rotation_is_told_to_reload(
    chromium: Browser, tmp_path: Path
) -> None:
    """The keys rotate between loading the page and pressing Send: the upload is refused (409)
    when it is created, before any payload is sealed or sent, and the page says to reload.
    Its own server, so the rotation does not reach the other tests."""
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    (tmp_path / "tmp").mkdir()
    org = keys.OrgSecret.generate()
    first, second = keys.RecipientSecret.generate("One"), keys.RecipientSecret.generate("Two")
    today = datetime.datetime.now(datetime.UTC).date()
    until = today + datetime.timedelta(days=30)
    org_b64 = b64e(org.public.public_key)
    app = create_app({"DATA_DIR": str(data_dir), "ORG_PUBLIC_KEY": org_b64})
    with app.app_context():
        keyset.install(
            db.session(),
            manifest.sign_manifest(org, 1, [first.public], today, until),
            org.public.public_key,
        )
    env = {
        "TIPLINE_DATA_DIR": str(data_dir),
        "TIPLINE_ORG_PUBLIC_KEY": org_b64,
        "TIPLINE_RATELIMIT_ENABLED": "false",
        "TIPLINE_MIN_FREE_BYTES": "0",
        "TMPDIR": str(tmp_path / "tmp"),
    }
    try:
        with gunicorn(env, log, "/") as url:
            context = new_context(chromium)
            page = context.new_page()
            methods: list[str] = []
            page.on("request", lambda r: methods.append(f"{r.method} {r.url}"))
            page.goto(url + "/submit")
            page.locator("#send:enabled").wait_for(timeout=60_000)
            assert "Your browser will lock your tip" in page.inner_text("#path-notice")
            with app.app_context():
                keyset.install(
                    db.session(),
                    manifest.sign_manifest(org, 2, [second.public], today, until),
                    org.public.public_key,
                )
            page.get_by_label("Your message").fill("sent to yesterday's keys")
            page.get_by_role("button", name="Send").click()
            page.locator("#page-error").wait_for(timeout=30_000)
            assert "changed its keys" in page.inner_text("#page-error")
            assert page.locator("#submit-form").is_visible()
            assert any(m.startswith("POST") and "/api/source/uploads" in m for m in methods)
            assert not any(m.startswith("PUT") for m in methods)
            context.close()
    finally:
        db.engine_of(app).dispose()


def test_a_lost_answer_to_finish_is_retried_and_the_tip_is_stored_once(
    chromium: Browser, source_server: Server
) -> None:
    """The circuit drops after the server stored the tip but before its answer arrived: the page
    finishes again, is told it is stored (200), and shows the codename; one submission."""
    context = new_context(chromium)
    page = context.new_page()
    finishes: list[int] = []
    before = submission_ids(source_server.app)

    def lose_first_answer(route: Route) -> None:
        if finishes:
            finishes.append(0)
            route.fallback()
            return
        # The request reaches the server, which stores the tip; its answer (and the new
        # session's cookie in it) never reaches the page. Sent from here, not with route.fetch,
        # whose answer's Set-Cookie would reach the browser's cookie jar.
        request = route.request
        sent = {k: v for k, v in request.all_headers().items() if not k.startswith(":")}
        sent["cookie"] = "; ".join(f"{c['name']}={c['value']}" for c in context.cookies())
        path = "/" + request.url.split("/", 3)[3]
        conn = http.client.HTTPConnection("127.0.0.1", _port(source_server), timeout=30)
        with contextlib.closing(conn):
            conn.request("POST", path, body=request.post_data_buffer or b"", headers=sent)
            finishes.append(conn.getresponse().status)
        route.abort("connectionreset")

    page.route("**/api/source/uploads/*/finish", lose_first_answer)
    page.goto(source_server.url + "/submit")
    page.locator("#send:enabled").wait_for(timeout=60_000)
    page.get_by_label("Your message").fill("stored once, told once")
    page.get_by_role("button", name="Send").click()
    page.locator("#done").wait_for(state="visible", timeout=60_000)
    assert len(page.inner_text("#codename").split()) == 7
    assert finishes[0] == 201 and len(finishes) == 2  # stored by the first; the retry told so
    assert len(submission_ids(source_server.app) - before) == 1
    context.close()
