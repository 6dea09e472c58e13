"""A source's whole journey in Debian's Chromium and Firefox ESR at each of Tor Browser's three
levels: the page says which path it takes before the button works, a first tip ends on the
codename step (impossible to miss, "I have written it down", then the next actions), the
language chosen survives the codename page and logging in, a reply with a file is read and the
file saved (in the Worker at Standard, streamed by the server at Safer and Safest), and every
view offers Log out.

Chromium's levels: Standard as shipped; Safer as V8 without its JIT (``--jitless``, which also
removes WebAssembly); Safest with JavaScript off. Firefox's come from Tor Browser's own
preferences in a fresh profile's user.js (tests/browser/firefox.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright

from ..server.replies import add_reply, open_stored, submission_ids
from .debian_chromium import CHROMIUM, CHROMIUM_ARGS
from .drivers import Driver, MarionetteDriver, PlaywrightDriver, wait_until
from .firefox import firefox
from .scenarios import first_tip, read_replies, send_button, wait_ready
from .source_fixtures import Server

pytestmark = pytest.mark.browser
LEVELS = ["standard", "safer", "safest"]


@pytest.fixture(params=[f"{b}-{lvl}" for b in ("chromium", "firefox") for lvl in LEVELS])
def driver(
    request: pytest.FixtureRequest, playwright: Playwright, chromium: Browser
) -> Iterator[Driver]:
    browser, level = request.param.split("-")
    if browser == "firefox":
        with firefox(level) as fx:
            yield MarionetteDriver(fx)
        return
    launched = None
    target = chromium
    if level == "safer":
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--js-flags=--jitless"]
        )
        target = launched
    context = target.new_context(java_script_enabled=level != "safest", accept_downloads=True)
    try:
        yield PlaywrightDriver(context.new_page(), level)
    finally:
        context.close()
        if launched is not None:
            launched.close()


def test_a_source_sends_reads_and_saves_at_every_level(
    driver: Driver, source_server: Server, tmp_path: Path
) -> None:
    marker = f"Levels-Marker-{driver.name}-{driver.level}"
    note = tmp_path / "evidence.txt"
    note.write_bytes(b"evidence " * 500)
    before = submission_ids(source_server.app)
    codename = first_tip(driver, source_server.url, marker, [note])
    (new,) = submission_ids(source_server.app) - before
    inner, files = open_stored(source_server.app, source_server.journalist, new)
    assert inner.message == marker and files == [note.read_bytes()]
    assert inner.sealed_by == ("browser" if driver.level == "standard" else "server")
    attachment = ("plan.pdf", os.urandom(300_000))
    add_reply(
        source_server.app,
        codename,
        source_server.journalist,
        f"Reply to {marker}",
        dict([attachment]),
    )
    read_replies(driver, source_server.url, codename, f"Reply to {marker}", attachment)


def test_the_chosen_language_stays_from_the_codename_to_the_replies(
    driver: Driver, source_server: Server, tmp_path: Path
) -> None:
    """Both browsers ask for English; the source picks Russian once, on the first page."""
    driver.goto(source_server.url + "/?lang=ru")
    assert driver.lang() == "ru"
    driver.goto(source_server.url + "/submit")
    assert driver.lang() == "ru"
    wait_ready_any(driver)
    driver.fill("#message", "по-русски")
    driver.click(send_button(driver))
    wait_until(
        lambda: bool(driver.count("#codename")) and bool(driver.text("#codename").strip()),
        120,
        "the codename",
    )
    assert driver.lang() == "ru"  # the codename page, the one they must understand
    codename = driver.text("#codename").strip()
    driver.check("#written")
    driver.click("#written-form button[type=submit]")
    wait_until(lambda: driver.url().endswith("/written"), 30, "the next page")
    assert driver.lang() == "ru"
    driver.goto(source_server.url + "/login")
    assert driver.lang() == "ru"
    wait_ready_any(driver)
    driver.fill("#codename-input", codename)
    driver.click(send_button(driver))
    wait_until(lambda: driver.visible("#source-actions"), 60, "the replies")
    driver.goto(source_server.url + "/replies")
    assert driver.lang() == "ru"


def wait_ready_any(driver: Driver) -> None:
    """Wait for the page to decide its path, whatever it says (the page is not in English)."""
    if driver.level != "safest":
        wait_until(lambda: driver.attr("#send", "disabled") is None, 60, "the page to get ready")
    else:
        wait_ready(driver)
