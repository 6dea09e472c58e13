"""Time to ready over a Tor-like link: from asking for the submit page until its Send button
works (the Worker started, libsodium.js compiled, the manifest verified, the word list checked).

    python bench/ready.py [--runs 3] [--rtt 0.8] [--rate 500000]

Debian's Chromium reaches the tip line (gunicorn, deploy/gunicorn.conf.py) through the test
suite's link emulator (tests/browser/tap.py): a round trip of ``--rtt`` seconds, ``--rate``
bytes/s shared by every connection, a round trip to open each connection, as a Tor circuit to
an onion service behaves. Measured in the same run, best of ``--runs``:

- floor: loading the landing page, which has no scripts: what any page costs on this link;
- cold: the submit page ready in a fresh browser profile (nothing cached);
- warm: ready again in the same profile (the content-addressed assets are cached);
- no cache: ready with the browser's cache off, as every visit was when every file was
  ``no-store``.

Prints each time, and the ratios cold/floor, warm/floor and warm/no-cache. Needs Debian's
chromium and a built static/ (make static).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from playwright.sync_api import BrowserContext, sync_playwright
from serving import ROOT, demo_keys, gunicorn, tipline_env

from tests.browser.debian_chromium import launch
from tests.browser.tap import tapped


def load_floor(context: BrowserContext, url: str) -> float:
    """Seconds to load the landing page (no scripts, one stylesheet)."""
    page = context.new_page()
    start = time.monotonic()
    page.goto(url + "/", wait_until="load")
    took = time.monotonic() - start
    page.close()
    return took


def time_to_ready(context: BrowserContext, url: str, cache: bool = True) -> float:
    """Seconds from asking for /submit until its Send button is enabled."""
    page = context.new_page()
    if not cache:
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    start = time.monotonic()
    page.goto(url + "/submit", wait_until="commit")
    page.locator("#send:enabled").wait_for(timeout=120_000)
    took = time.monotonic() - start
    notice = page.inner_text("#path-notice")
    if "lock your tip" not in notice:
        raise SystemExit(f"bench: the page did not get ready to seal: {notice!r}")
    page.close()
    return took


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rtt", type=float, default=0.8)
    parser.add_argument("--rate", type=float, default=500_000)
    args = parser.parse_args()
    if not (ROOT / "static" / "build" / "assets.json").is_file():
        raise SystemExit("bench: static/build/ is missing: run `make static` first")
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        data = Path(tmp) / "data"
        org, _journalist, _ = demo_keys(data)
        with (
            gunicorn("tipline.server.wsgi:app", tipline_env(data, org), 2) as (port, _),
            tapped(port, args.rtt, args.rate) as tap,
            sync_playwright() as pw,
        ):
            browser = launch(pw)
            times: dict[str, list[float]] = {"floor": [], "cold": [], "warm": [], "nocache": []}
            for _ in range(args.runs):
                context = browser.new_context()
                times["floor"].append(load_floor(context, tap.url))
                context.close()
                context = browser.new_context()  # a fresh profile: nothing cached
                times["cold"].append(time_to_ready(context, tap.url))
                times["warm"].append(time_to_ready(context, tap.url))
                context.close()
                context = browser.new_context()
                times["nocache"].append(time_to_ready(context, tap.url, cache=False))
                context.close()
            browser.close()
    best = {name: min(values) for name, values in times.items()}
    print(
        f"link: {args.rtt * 1000:.0f} ms round trip, {args.rate / 1000:.0f} kB/s, "
        f"best of {args.runs}"
    )
    print(f"floor (landing page, no scripts):   {best['floor']:.2f} s")
    print(
        f"submit page ready, cold cache:      {best['cold']:.2f} s  "
        f"({best['cold'] / best['floor']:.1f}x the floor)"
    )
    print(
        f"submit page ready, warm cache:      {best['warm']:.2f} s  "
        f"({best['warm'] / best['floor']:.1f}x the floor)"
    )
    print(
        f"submit page ready, cache off:       {best['nocache']:.2f} s  "
        f"(warm is {best['warm'] / best['nocache']:.2f}x of it)"
    )


if __name__ == "__main__":
    main()
