"""Sealing speed in headless Chromium: the source page's crypto Worker seals a file from disk.

    python bench/seal_browser.py [--size-mib 256] [--runs 3]

The Worker (static/js/worker.js) is driven through the page's own client (static/js/source/
common.js) on a page served at the tip line's origin under the production CSP, exactly as the
submit page drives it. The baseline, measured in the same run and the same page, reads the same
file through the same File.slice calls without sealing: the rate at which the browser can hand
the Worker bytes at all. Prints both rates, their ratio, and the rate against the issue's goal
(>= 100 MB/s). Needs Debian's chromium and a built static/ (make static).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from playwright.sync_api import Route, sync_playwright
from serving import ROOT, demo_keys, gunicorn

from tests.browser.debian_chromium import launch
from tipline.crypto.codename import derive, generate
from tipline.crypto.encoding import b64e
from tipline.server.security import CSP_CRYPTO
from tipline.wordlist import load_wordlist

GOAL_MB_S = 100.0
PAGE = b"""<!doctype html><meta charset="utf-8"><title>seal bench</title>
<input type="file" id="file"><script type="module" src="bench.js"></script>"""
SCRIPT = b"""import { CryptoWorker } from "/static/js/source/common.js";
const SLICE = 1 << 20;
let worker = null;
window.bench = {
  async start(orgPublicKey) {
    worker = new CryptoWorker();
    const manifest = await (await fetch("/api/source/manifest", { cache: "no-store" })).text();
    await worker.call("init", { orgPublicKey, manifest });
    document.body.dataset.ready = "yes";
  },
  async seal(replyPublicKey) {
    const files = [document.getElementById("file").files[0]];
    const t0 = performance.now();
    const sealed = await worker.call("seal", { message: "", files, replyPublicKey });
    return { ms: performance.now() - t0, size: sealed.envelope.size };
  },
  async read() {
    const file = document.getElementById("file").files[0];
    const t0 = performance.now();
    let total = 0;
    for (let at = 0; at < file.size; at += SLICE) {
      total += (await file.slice(at, at + SLICE).arrayBuffer()).byteLength;
    }
    return { ms: performance.now() - t0, size: total };
  },
};
"""


def main() -> None:
    """Seal the file ``--runs`` times, read it as often, print the best of each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not (ROOT / "static" / "build").is_dir():
        raise SystemExit("bench: static/build/ is missing: run `make static` first")
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        base = Path(tmp)
        org, _, _ = demo_keys(base / "data")
        payload = base / "payload.bin"
        with payload.open("wb") as out:
            for _ in range(args.size_mib):
                out.write(os.urandom(1 << 20))
        size = payload.stat().st_size
        reply_key = b64e(derive(generate(load_wordlist())).reply_public_key)
        env = {
            "TIPLINE_DATA_DIR": str(base / "data"),
            "TIPLINE_ORG_PUBLIC_KEY": b64e(org.public.public_key),
            "TIPLINE_RATELIMIT_ENABLED": "false",
        }
        with gunicorn("tipline.server.wsgi:app", env, 1) as (port, _), sync_playwright() as pw:
            browser = launch(pw)
            origin = f"http://127.0.0.1:{port}"

            def serve(route: Route) -> None:
                name = route.request.url.rsplit("/", 1)[1]
                body, kind = (
                    (SCRIPT, "text/javascript")
                    if name == "bench.js"
                    else (
                        PAGE,
                        "text/html",
                    )
                )
                route.fulfill(
                    body=body, headers={"Content-Type": kind, "Content-Security-Policy": CSP_CRYPTO}
                )

            page = browser.new_page()
            page.route(f"{origin}/__bench__/*", serve)
            page.goto(f"{origin}/__bench__/page.html")
            page.wait_for_function("window.bench !== undefined")
            page.evaluate("key => window.bench.start(key)", b64e(org.public.public_key))
            page.set_input_files("#file", str(payload))
            seal_ms, read_ms = [], []
            for _ in range(args.runs):
                sealed = page.evaluate("key => window.bench.seal(key)", reply_key)
                assert sealed["size"] > size, sealed
                seal_ms.append(sealed["ms"])
                read = page.evaluate("() => window.bench.read()")
                assert read["size"] == size, read
                read_ms.append(read["ms"])
            renderer_peak = max(_renderer_peaks(), default=0)
            browser.close()
    mb = size / 1e6
    seal_rate, read_rate = mb / (min(seal_ms) / 1000), mb / (min(read_ms) / 1000)
    print(
        f"seal {args.size_mib} MiB in Chromium's worker: {seal_rate:7.1f} MB/s "
        f"(best of {args.runs}); goal {GOAL_MB_S:.0f} MB/s, ratio {seal_rate / GOAL_MB_S:.2f}"
    )
    print(
        f"baseline, reading the same File by slices: {read_rate:7.1f} MB/s; "
        f"seal/read ratio {seal_rate / read_rate:.2f}"
    )
    print(
        f"largest Chromium renderer peak RSS: {renderer_peak / 2**20:.0f} MiB for a "
        f"{args.size_mib} MiB file (the sealed envelope is a Blob the page keeps until uploaded)"
    )


def _renderer_peaks() -> list[int]:
    """Peak RSS (VmHWM) of every Chromium renderer process running now (the page and its
    Worker live in one), read from /proc."""
    peaks = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if b"--type=renderer" not in cmdline:
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) * 1024)
        except (OSError, ValueError):
            continue
    return peaks


if __name__ == "__main__":
    main()
