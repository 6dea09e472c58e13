"""The source pages' smaller promises, in Debian's Chromium at the Standard level: a cancelled
first attempt leaves no source and the next one shows a codename; a reply far over the old
64 MiB opens in the Worker with its file offered, in bounded memory; the page and the server
share one reply size limit; status and errors are announced; the focus ring is visible; a
right-to-left page does not overflow; the language links cannot abandon an upload.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Route
from sqlalchemy import func, select

from tipline.crypto import keys, manifest
from tipline.crypto.encoding import b64e
from tipline.server import create_app, db, keyset
from tipline.server.models import Reply, Source

from ..server.replies import add_reply
from .source_fixtures import Server, gunicorn

pytestmark = pytest.mark.browser


def _sources(server: Server) -> int:
    with server.app.app_context():
        return int(db.session().scalar(select(func.count()).select_from(Source)) or 0)


def _codename_by_no_js(browser: Browser, url: str) -> str:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(url + "/submit")
    page.fill("#message", "a first tip")
    page.click("#send-plain")
    codename = page.inner_text("#codename")
    context.close()
    return codename


def test_a_cancelled_first_attempt_leaves_nothing_and_the_next_shows_a_codename(
    chromium: Browser, source_server: Server, tmp_path: Path
) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(24 << 20))
    context = chromium.new_context()
    page = context.new_page()
    held: list[Route] = []

    def hold_second(route: Route) -> None:
        if route.request.method == "PUT" and not held:
            held.append(route)  # never answered: the upload is under way when cancelled
            return
        route.continue_()

    context.route("**/api/source/uploads/*", hold_second)
    sources = _sources(source_server)
    page.goto(source_server.url + "/submit")
    page.locator("#send:enabled").wait_for(timeout=60_000)
    page.fill("#message", "cancel me")
    page.set_input_files("#files", str(tmp_path / "big.bin"))
    page.click("#send")
    page.wait_for_function("() => document.querySelector('#progress').value >= 0")
    for _ in range(600):
        if held:
            break
        page.wait_for_timeout(50)
    assert held
    assert not page.locator("#languages").is_visible()  # nothing may abandon the upload
    page.click("#cancel")
    page.get_by_text("Cancelled. Nothing was stored.").wait_for()
    held[0].abort("connectionreset")
    assert page.locator("#languages").is_visible()
    assert _sources(source_server) == sources  # no source without a submission
    page.reload()
    assert "You are logged in" not in page.inner_text("main")
    page.locator("#send:enabled").wait_for(timeout=60_000)
    page.fill("#message", "the second attempt")
    page.click("#send")
    page.locator("#codename-box").wait_for(state="visible", timeout=60_000)
    assert len(page.inner_text("#codename").split()) == 7  # this source can read replies
    assert _sources(source_server) == sources + 1
    context.close()


def test_a_reply_far_over_64_mib_opens_in_the_worker(
    chromium: Browser, source_server: Server, tmp_path: Path
) -> None:
    codename = _codename_by_no_js(chromium, source_server.url)
    data = os.urandom(80 << 20)
    add_reply(
        source_server.app, codename, source_server.journalist, "Big-Reply", {"scan.tif": data}
    )
    context = chromium.new_context(accept_downloads=True)
    page = context.new_page()
    page.goto(source_server.url + "/login")
    page.locator("#send:enabled").wait_for(timeout=60_000)
    page.fill("#codename-input", codename)
    page.click("#send")
    page.get_by_text("Big-Reply").wait_for(timeout=180_000)
    # The Worker never held more than a Blob part (1 MiB) of plaintext and one piece more.
    peak = int(page.get_attribute("#reply-list article", "data-peak-held") or -1)
    assert 0 < peak <= (1 << 20) + (64 << 10), peak
    with page.expect_download() as info:
        page.click("#reply-list a[download]")
    assert info.value.suggested_filename == "scan.tif"
    assert Path(info.value.path()).read_bytes() == data
    context.close()


@pytest.fixture(scope="module")
def small_replies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that accepts replies of at most 1 MiB (MAX_REPLY_BUNDLE)."""
    base = tmp_path_factory.mktemp("small-replies")
    data_dir, tmp_dir, log = base / "data", base / "tmp", base / "server.log"
    tmp_dir.mkdir()
    org = keys.OrgSecret.generate()
    journalist = keys.RecipientSecret.generate("J")
    today = datetime.datetime.now(datetime.UTC).date()
    signed = manifest.sign_manifest(
        org, 1, [journalist.public], today, today + datetime.timedelta(9)
    )
    org_b64 = b64e(org.public.public_key)
    app = create_app(
        {"DATA_DIR": str(data_dir), "ORG_PUBLIC_KEY": org_b64, "MAX_REPLY_BUNDLE": 1 << 20}
    )
    with app.app_context():
        keyset.install(db.session(), signed, org.public.public_key)
    env = {
        "TIPLINE_DATA_DIR": str(data_dir),
        "TIPLINE_ORG_PUBLIC_KEY": org_b64,
        "TIPLINE_RATELIMIT_ENABLED": "false",
        "TIPLINE_MIN_FREE_BYTES": "0",
        "TIPLINE_MAX_REPLY_BUNDLE": str(1 << 20),
        "TMPDIR": str(tmp_dir),
    }
    try:
        with gunicorn(env, log, "/") as url:
            yield Server(url, data_dir, tmp_dir, log, journalist, app)
    finally:
        db.engine_of(app).dispose()


def test_the_page_and_the_server_share_one_reply_limit(
    chromium: Browser, small_replies: Server
) -> None:
    """The page opens what the server accepts from the desk (MAX_REPLY_BUNDLE, the one
    value); a reply over it is called too large, never a wrong codename, whether the listing
    says so or only the bytes do."""
    server = small_replies
    codename = _codename_by_no_js(chromium, server.url)
    fits = add_reply(server.app, codename, server.journalist, "Fits", {"a": os.urandom(900_000)})
    over = add_reply(server.app, codename, server.journalist, "Over", {"b": os.urandom(1 << 20)})
    hidden = add_reply(
        server.app, codename, server.journalist, "Hidden", {"c": os.urandom(1 << 20)}
    )
    with server.app.app_context():
        row = db.session().get(Reply, hidden)
        assert row is not None
        row.size = 1000  # the listing lies: the Worker must count the bytes itself
        db.session().commit()
    context = chromium.new_context()
    page = context.new_page()
    page.goto(server.url + "/login")
    assert (
        int(page.get_attribute("#codename-form", "data-max-reply") or 0)
        == (server.app.config["MAX_REPLY_BUNDLE"])
    )
    page.locator("#send:enabled").wait_for(timeout=60_000)
    page.fill("#codename-input", codename)
    page.click("#send")
    page.get_by_text("Fits").wait_for(timeout=60_000)
    for reply_id in (over, hidden):
        text = page.inner_text(f"#reply-{reply_id}")
        assert "larger than this tip line accepts" in text, text
        assert "codename" not in text
    assert page.locator(f"#reply-{fits} a[download]").count() == 1
    context.close()


def test_messages_are_announced_and_focus_is_visible(
    chromium: Browser, source_server: Server
) -> None:
    context = chromium.new_context(viewport={"width": 360, "height": 740})
    page = context.new_page()
    page.goto(source_server.url + "/submit")
    assert page.get_attribute("#path-notice", "role") == "status"
    assert page.get_attribute("#path-notice", "aria-live") == "polite"
    assert page.get_attribute("#page-error", "role") == "alert"
    page.locator("#send:enabled").wait_for(timeout=60_000)
    page.click("#send")  # nothing written: the page says so, as an alert
    assert page.locator("#page-error").is_visible()
    assert "Write a message or choose a file." in page.inner_text("#page-error")
    # The focus ring against the page behind it: at least 3:1 (WCAG 2.2, 1.4.11).
    page.focus("#message")
    ratio = page.evaluate(
        """() => {
          const lum = (c) => {
            const [r, g, b] = c.match(/\\d+/g).slice(0, 3).map((v) => {
              v = Number(v) / 255;
              return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
            });
            return 0.2126 * r + 0.7152 * g + 0.0722 * b;
          };
          const ring = getComputedStyle(document.activeElement).outlineColor;
          const page = getComputedStyle(document.body).backgroundColor;
          const [a, b] = [lum(ring), lum(page)].sort((x, y) => y - x);
          return (a + 0.05) / (b + 0.05);
        }"""
    )
    assert ratio >= 3, ratio
    # Right to left (no such language ships yet): nothing overflows sideways on a phone.
    for path in ("/", "/submit", "/login"):
        page.goto(source_server.url + path)
        page.evaluate("document.documentElement.dir = 'rtl'")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, path
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, path
    # The login field hides the words, with a switch to show them.
    page.goto(source_server.url + "/login")
    assert page.get_attribute("#codename-input", "type") == "password"
    page.check("#show-codename")
    assert page.get_attribute("#codename-input", "type") == "text"
    page.uncheck("#show-codename")
    assert page.get_attribute("#codename-input", "type") == "password"
    icon = page.request.get(source_server.url + "/favicon.ico")
    assert icon.ok and icon.headers["content-type"] in ("image/vnd.microsoft.icon", "image/x-icon")
    context.close()
