"""Debian's Firefox ESR (the browser Tor Browser is built on), headless, driven over Marionette,
in a fresh profile whose user.js sets one of Tor Browser's three security levels:

- standard: JavaScript, WebAssembly and the JIT, as shipped;
- safer: Tor Browser's "Safer" preferences: no WebAssembly, no JIT (Ion, Baseline, the regular
  expression JIT), no asm.js, SVG OpenType fonts and MathML off, media click-to-play;
- safest: JavaScript off as well.

A missing Firefox is a failure, never a skip. Nothing here reaches the network: the profile
turns off every background request Firefox would make.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

# marionette-driver's own imports (mozinfo, mozrunner) use APIs Python deprecates; the suite
# turns warnings into errors, so they are let through here, at import, and nowhere else.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from marionette_driver import By, errors
    from marionette_driver.marionette import Marionette

__all__ = ["FIREFOX", "By", "Firefox", "errors", "firefox"]

FIREFOX = "/usr/bin/firefox-esr"

QUIET = {
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.aboutwelcome.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
    "app.normandy.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "extensions.update.enabled": False,
    "browser.region.network.url": "",
    "services.settings.server": "http://127.0.0.1:9/",
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    # Downloads go to the profile's folder without asking (the tests read them there).
    "browser.download.useDownloadDir": True,
    "browser.download.folderList": 2,
    "browser.download.always_ask_before_handling_new_types": False,
    # Tor Browser is always in private browsing: nothing kept on disk between sessions.
    "browser.privatebrowsing.autostart": True,
}

# Tor Browser's security levels, as its security-level preferences set them.
LEVELS: dict[str, dict[str, object]] = {
    "standard": {},
    "safer": {
        "javascript.options.wasm": False,
        "javascript.options.ion": False,
        "javascript.options.baselinejit": False,
        "javascript.options.native_regexp": False,
        "javascript.options.asmjs": False,
        "gfx.font_rendering.opentype_svg.enabled": False,
        "mathml.disabled": True,
        "media.autoplay.blocking_policy": 2,
    },
}
LEVELS["safest"] = {**LEVELS["safer"], "javascript.enabled": False, "svg.disabled": True}


def _pref(name: str, value: object) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    else:
        text = '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f'user_pref("{name}", {text});\n'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_profile(folder: Path, level: str, port: int) -> Path:
    """A fresh profile for ``level`` with Marionette on ``port``; returns its downloads folder."""
    downloads = folder / "downloads"
    downloads.mkdir(parents=True)
    prefs = {
        **QUIET,
        **LEVELS[level],
        "marionette.port": port,
        "browser.download.dir": str(downloads),
    }
    (folder / "user.js").write_text("".join(_pref(k, v) for k, v in prefs.items()))
    return downloads


class Firefox:
    """A running Firefox ESR at one security level, with a Marionette session."""

    def __init__(self, level: str) -> None:
        if not Path(FIREFOX).exists():
            pytest.fail(f"{FIREFOX} is missing: apt-get install firefox-esr")
        self.level = level
        self.folder = Path(tempfile.mkdtemp(prefix=f"tipline-firefox-{level}-"))
        self.port = _free_port()
        self.downloads = write_profile(self.folder / "profile", level, self.port)
        self.log = (self.folder / "firefox.log").open("wb")
        self.proc = subprocess.Popen(
            [
                FIREFOX,
                "--headless",
                "--marionette",
                "--no-remote",
                "--profile",
                str(self.folder / "profile"),
                "about:blank",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        # Wait for Marionette's port here (marionette-driver's own wait leaks a socket per try).
        deadline = time.monotonic() + 60
        while not self._listening():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                pytest.fail(f"Firefox did not start: {self._log_tail()}")
            time.sleep(0.3)
        self.client = Marionette(host="127.0.0.1", port=self.port)
        self.client.start_session()
        self.client.timeout.page_load = 120
        self.client.timeout.script = 120

    def _listening(self) -> bool:
        with socket.socket() as probe:
            probe.settimeout(1)
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.folder / "firefox.log").read_text(errors="replace")[-2000:]
        return ""

    def close(self) -> None:
        """End the session and Firefox, and remove the profile."""
        client = getattr(self, "client", None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.delete_session()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def firefox(level: str) -> Iterator[Firefox]:
    """Firefox ESR at ``level`` for the length of the block."""
    browser = Firefox(level)
    try:
        yield browser
    finally:
        browser.close()
