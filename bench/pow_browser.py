"""The proof-of-work's solve time in headless Chromium (docs/SPEC.md §10, docs/ADMIN.md).

    python bench/pow_browser.py [--runs 20] [--difficulties 12,16,18,20]

The source page's crypto Worker (static/js/worker.js, op ``pow``) is driven through the page's
own client at the tip line's origin under the production CSP, as the submit page drives it,
with fresh random challenges (the Worker does not check the server's tag). Solve times are
geometric in nature (each hash is a coin toss), so the mean over many runs is what a source
sees on average; the slowest run is printed too. The baseline, in the same run: node solving
with the same code (tests/js/tools/pow.mjs), and the cost per hash against 2^d expected tries.
Then the same at Tor Browser's Safer level (``--jitless``: no JIT, no WebAssembly), where the
Worker cannot load libsodium.js, so the page takes the server-side form that the proof-of-work
does not gate: printed as such. Needs Debian's chromium and a built static/ (make static).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from playwright.sync_api import Browser, Page, Route, sync_playwright
from serving import ROOT, demo_keys, gunicorn

from tests.browser.debian_chromium import CHROMIUM, CHROMIUM_ARGS, launch
from tipline.crypto.encoding import b64e
from tipline.server.security import CSP_CRYPTO

PAGE = b"""<!doctype html><meta charset="utf-8"><title>pow bench</title>
<script type="module" src="bench.js"></script>"""
SCRIPT = b"""import { CryptoWorker } from "/static/js/source/common.js";
const worker = new CryptoWorker();
window.bench = {
  async solve(challenge, difficulty) {
    const t0 = performance.now();
    const solved = await worker.call("pow", { challenge, difficulty });
    return { ms: performance.now() - t0, nonce: solved.nonce };
  },
};
"""


def _page(browser: Browser, origin: str) -> Page:
    def serve(route: Route) -> None:
        name = route.request.url.rsplit("/", 1)[1]
        body, kind = (SCRIPT, "text/javascript") if name == "bench.js" else (PAGE, "text/html")
        route.fulfill(
            body=body, headers={"Content-Type": kind, "Content-Security-Policy": CSP_CRYPTO}
        )

    page = browser.new_page()
    page.route(f"{origin}/__bench__/*", serve)
    page.goto(f"{origin}/__bench__/page.html")
    page.wait_for_function("window.bench !== undefined")
    return page


def _challenge() -> str:
    return b64e(os.urandom(58))


def _summary(label: str, ms: list[float], difficulty: int) -> None:
    per_hash = statistics.mean(ms) * 1000 / 2**difficulty
    print(
        f"{label:28} {difficulty:2} bits: mean {statistics.mean(ms):8.0f} ms, median "
        f"{statistics.median(ms):8.0f} ms, slowest {max(ms):8.0f} ms ({len(ms)} runs; "
        f"{per_hash:.2f} us a hash)"
    )


def main() -> None:
    """Solve ``--runs`` fresh challenges at each difficulty, in Chromium and in node."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--difficulties", default="12,16,18,20")
    args = parser.parse_args()
    levels = [int(d) for d in args.difficulties.split(",")]
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        base = Path(tmp)
        org, _, _ = demo_keys(base / "data")
        env = {
            "TIPLINE_DATA_DIR": str(base / "data"),
            "TIPLINE_ORG_PUBLIC_KEY": b64e(org.public.public_key),
            "TIPLINE_RATELIMIT_ENABLED": "false",
            "TIPLINE_MIN_FREE_BYTES": "0",
        }
        with gunicorn("tipline.server.wsgi:app", env, 1) as (port, _), sync_playwright() as pw:
            origin = f"http://127.0.0.1:{port}"
            browser = launch(pw)
            page = _page(browser, origin)
            for d in levels:
                ms = [
                    page.evaluate("([c, d]) => window.bench.solve(c, d)", [_challenge(), d])["ms"]
                    for _ in range(args.runs)
                ]
                _summary("Chromium, Standard (wasm)", ms, d)
                node = []
                for _ in range(min(args.runs, 10)):
                    out = subprocess.run(
                        ["node", str(ROOT / "tests/js/tools/pow.mjs"), _challenge(), str(d)],
                        capture_output=True, text=True, check=True,
                    )  # fmt: skip
                    node.append(float(json.loads(out.stdout)["ms"]))
                _summary("baseline: node (wasm)", node, d)
            browser.close()
            safer = pw.chromium.launch(
                executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--js-flags=--jitless"]
            )
            page = _page(safer, origin)
            try:
                page.evaluate("([c, d]) => window.bench.solve(c, d)", [_challenge(), 8])
                print("Chromium, Safer (--jitless): solved (unexpected: WebAssembly is there)")
            except Exception as exc:  # the Worker's refusal, as the page would see it
                print(
                    "Chromium, Safer (--jitless): no WebAssembly, the Worker cannot solve "
                    f"({str(exc).splitlines()[0][:80]}); the page takes the server-side form, "
                    "which the proof-of-work does not gate"
                )
            safer.close()


if __name__ == "__main__":
    main()
