"""One small interface over the two browsers the source-side tests drive: Debian's Chromium
through Playwright, and Debian's Firefox ESR through Marionette (tests/browser/firefox.py). A
scenario written against ``Driver`` runs in both, at whatever security level each was started.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from playwright.sync_api import Page

from .firefox import By, Firefox, errors


class Driver(Protocol):
    """What a source does in a page, and what a test reads back."""

    name: str
    level: str

    def goto(self, url: str) -> None: ...
    def fill(self, css: str, text: str) -> None: ...
    def set_files(self, css: str, paths: list[Path]) -> None: ...
    def click(self, css: str) -> None: ...
    def check(self, css: str) -> None: ...
    def text(self, css: str) -> str: ...
    def count(self, css: str) -> int: ...
    def visible(self, css: str) -> bool: ...
    def attr(self, css: str, name: str) -> str | None: ...
    def value(self, css: str) -> str: ...
    def lang(self) -> str: ...
    def url(self) -> str: ...
    def download(self, css: str) -> tuple[str, bytes]: ...


def wait_until(test: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    """Poll ``test`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class PlaywrightDriver:
    """Chromium through a Playwright page."""

    name = "chromium"

    def __init__(self, page: Page, level: str) -> None:
        self.page, self.level = page, level

    def goto(self, url: str) -> None:
        self.page.goto(url)

    def fill(self, css: str, text: str) -> None:
        self.page.fill(css, text)

    def set_files(self, css: str, paths: list[Path]) -> None:
        self.page.set_input_files(css, [str(p) for p in paths])

    def click(self, css: str) -> None:
        self.page.click(css)
        # A click that loads a page returns once that page has committed, possibly before its
        # body came (gunicorn writes the headers and the body separately): a read straight
        # after would find an empty page. The scenarios read the page a click led to, so wait
        # until it is all parsed; not for its "load", which over a slow link (the tap) can wait
        # long for a stylesheet queued behind an upload.
        self.page.wait_for_load_state("domcontentloaded")

    def check(self, css: str) -> None:
        self.page.check(css)

    def text(self, css: str) -> str:
        return self.page.inner_text(css)

    def count(self, css: str) -> int:
        return self.page.locator(css).count()

    def visible(self, css: str) -> bool:
        locator = self.page.locator(css)
        return locator.count() > 0 and locator.first.is_visible()

    def attr(self, css: str, name: str) -> str | None:
        return self.page.get_attribute(css, name)

    def value(self, css: str) -> str:
        return self.page.input_value(css)

    def lang(self) -> str:
        return str(self.page.get_attribute("html", "lang"))

    def url(self) -> str:
        return self.page.url

    def download(self, css: str) -> tuple[str, bytes]:
        with self.page.expect_download() as info:
            self.page.click(css)
        path = info.value.path()
        return info.value.suggested_filename, Path(path).read_bytes()


class MarionetteDriver:
    """Firefox ESR through Marionette. Reads go through WebDriver element calls, which work
    with the page's JavaScript off (Safest)."""

    name = "firefox"

    def __init__(self, browser: Firefox) -> None:
        self.browser, self.client, self.level = browser, browser.client, browser.level

    def _find(self, css: str) -> Any:
        return self.client.find_element(By.CSS_SELECTOR, css)

    def goto(self, url: str) -> None:
        self.client.navigate(url)

    def fill(self, css: str, text: str) -> None:
        element = self._find(css)
        element.clear()
        element.send_keys(text)

    def set_files(self, css: str, paths: list[Path]) -> None:
        element = self._find(css)
        for path in paths:
            element.send_keys(str(path))

    def click(self, css: str) -> None:
        self._find(css).click()

    def check(self, css: str) -> None:
        element = self._find(css)
        if not element.is_selected():
            element.click()

    def text(self, css: str) -> str:
        return str(self._find(css).text)

    def count(self, css: str) -> int:
        return len(self.client.find_elements(By.CSS_SELECTOR, css))

    def visible(self, css: str) -> bool:
        try:
            return bool(self._find(css).is_displayed())
        except (errors.NoSuchElementException, errors.MarionetteException):
            return False

    def attr(self, css: str, name: str) -> str | None:
        value = self._find(css).get_attribute(name)
        return None if value is None else str(value)

    def value(self, css: str) -> str:
        return str(self._find(css).get_property("value"))

    def lang(self) -> str:
        return str(self._find("html").get_attribute("lang"))

    def url(self) -> str:
        return str(self.client.get_url())

    def download(self, css: str) -> tuple[str, bytes]:
        before = set(self.browser.downloads.iterdir())
        self._find(css).click()
        found: list[Path] = []

        def finished() -> bool:
            new = [p for p in self.browser.downloads.iterdir() if p not in before]
            done = [p for p in new if not p.name.endswith(".part") and p.stat().st_size >= 0]
            partial = [p for p in new if p.name.endswith(".part")]
            if done and not partial:
                found[:] = done
                return True
            return False

        wait_until(finished, 120, "the download")
        path = found[0]
        time.sleep(0.3)  # the file is renamed into place once complete; let the size settle
        return path.name, path.read_bytes()
