"""The real source interface for browser tests: gunicorn (2 workers, the production settings
in tipline.server.gunicorn_conf) on a loopback port, with its own data folder and TMPDIR, and
Debian's Chromium driven by Playwright. Missing Chromium is a failure, never a skip.
"""

from __future__ import annotations

import datetime
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from gunicorn.config import Config
from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright

from tipline.crypto import keys, manifest
from tipline.crypto.encoding import b64e
from tipline.server import create_app, db, gunicorn_conf, keyset, settings

from .debian_chromium import CHROMIUM, launch

# Values a careless server would log or store; none may appear anywhere afterwards.
DISTINCTIVE = {
    "X-Forwarded-For": "203.0.113.197",
    "User-Agent": "DistinctiveAgent/7.3 (tipline-test)",
    "Referer": "http://distinctive-referer.example/leak",
}


@dataclass
class Server:
    """A running server and what a test needs to look inside it."""

    url: str
    data_dir: Path
    tmp_dir: Path
    log: Path
    journalist: keys.RecipientSecret
    app: Flask  # the same database and blob store, for inspecting and adding replies


# How long gunicorn may take to stop on SIGTERM: it lets its workers finish what they are doing
# for up to graceful_timeout, then kills them, and exits itself. Waiting less fails on a server
# that is only slow: on a loaded machine, workers with nothing to do took over 10 s to go.
STOP_SECONDS = getattr(gunicorn_conf, "graceful_timeout", Config().graceful_timeout) + 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_serving(
    url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60
) -> None:
    """Return once ``url`` answers; fail with the server's ``log`` if it does not.

    Only a refused connection (nothing was sent) is tried again. A request that reached the
    socket is waited for, never abandoned: gunicorn's master listens before its workers have
    loaded the app, and a worker serves a request queued there even after its client gave up,
    possibly after this returned (a test that records what reached the server then found
    urllib's own request among the browser's).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=timeout):
                return
        except urllib.error.URLError as exc:
            if not isinstance(exc.reason, ConnectionRefusedError) or proc.poll() is not None:
                pytest.fail(f"gunicorn did not start ({exc}): {log.read_text()}")
        except OSError as exc:
            pytest.fail(f"gunicorn did not start ({exc}): {log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"gunicorn did not listen within {timeout} s: {log.read_text()}")
        time.sleep(0.1)


@contextmanager
def local_server(handler: type[socketserver.BaseRequestHandler]) -> Iterator[int]:
    """A throwaway server on 127.0.0.1 for what is not the tip line (a page of another origin,
    a hand-timed answer, a sink), a thread per connection; yields its port."""
    httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextmanager
def gunicorn(
    env: dict[str, str], log: Path, ready: str, app: str = "tipline.server.wsgi:app"
) -> Iterator[str]:
    """Serve ``app`` (tipline.server.wsgi:app unless told) with gunicorn (2 workers, the
    production settings in tipline.server.gunicorn_conf) on a free loopback port, with ``env``
    added to this process's environment and its output in ``log``. Yields the URL once ``ready``
    (a path) answers; stops the server afterwards, even if it never came up.
    """
    port = _free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "python:tipline.server.gunicorn_conf",
                "-w",
                "2",
                "-b",
                f"127.0.0.1:{port}",
                app,
            ],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url + ready, proc, log)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=STOP_SECONDS)


@dataclass
class Site:
    """A data folder with a fresh org key, one journalist key and its signed manifest (30 days)
    installed, and the environment gunicorn runs the app with."""

    data_dir: Path
    tmp_dir: Path
    log: Path
    journalist: keys.RecipientSecret
    app: Flask
    env: dict[str, str]

    def server(self, url: str) -> Server:
        return Server(url, self.data_dir, self.tmp_dir, self.log, self.journalist, self.app)


def prepare_site(base: Path, **instance_settings: Any) -> Site:
    """Everything a test server needs before gunicorn starts; ``instance_settings`` are the
    admin's settings to save (e.g. ``pow="on"``)."""
    data_dir, tmp_dir, log = base / "data", base / "tmp", base / "server.log"
    tmp_dir.mkdir(parents=True)
    org = keys.OrgSecret.generate()
    journalist = keys.RecipientSecret.generate("Test journalist")
    today = datetime.datetime.now(datetime.UTC).date()
    signed = manifest.sign_manifest(
        org, 1, [journalist.public], today, today + datetime.timedelta(days=30)
    )
    env = {
        "TIPLINE_DATA_DIR": str(data_dir),
        "TIPLINE_ORG_PUBLIC_KEY": b64e(org.public.public_key),
        "TIPLINE_RATELIMIT_ENABLED": "false",
        "TIPLINE_MIN_FREE_BYTES": "0",
        "TMPDIR": str(tmp_dir),
    }
    app = create_app({"DATA_DIR": str(data_dir), "ORG_PUBLIC_KEY": b64e(org.public.public_key)})
    with app.app_context():
        keyset.install(db.session(), signed, org.public.public_key)
        if instance_settings:
            settings.save(db.session(), settings.Settings(**instance_settings))
    return Site(data_dir, tmp_dir, log, journalist, app, env)


@pytest.fixture(scope="session")
def source_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    site = prepare_site(tmp_path_factory.mktemp("source-server"))
    try:
        with gunicorn(site.env, site.log, "/") as url:
            yield site.server(url)
    finally:
        db.engine_of(site.app).dispose()


# Package scope, not session: sync Playwright keeps an asyncio loop running in this thread for
# as long as it lives, and later tests (the desk's Textual pilot) need to run loops of their own.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    browser = launch(playwright)
    yield browser
    browser.close()


def new_context(browser: Browser, **extra: Any) -> BrowserContext:
    """A browser context that sends the distinctive User-Agent and X-Forwarded-For.

    No Referer: Chromium drops one added by a route or by extra headers (it stalls a multipart
    POST given one that way). tests/browser/test_source_privacy.py sends real ones, by a link
    and a form on a page of another origin and by ``page.goto(referer=...)``, and checks that
    they arrived.
    """
    return browser.new_context(
        user_agent=DISTINCTIVE["User-Agent"],
        extra_http_headers={"X-Forwarded-For": DISTINCTIVE["X-Forwarded-For"]},
        **extra,
    )


def every_file(*folders: Path) -> Iterator[Path]:
    """Every regular file under the folders (the database and its WAL included)."""
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                yield path
