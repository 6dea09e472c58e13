"""Sealing and sending in headless Chromium, streamed: the source page's crypto Worker seals a
file from disk piece by piece while the page uploads it.

    python bench/seal_browser.py [--size-mib 256] [--runs 3]

The Worker (static/js/worker.js) is driven through the page's own client (static/js/source/
common.js) on a page served at the tip line's origin under the production CSP, exactly as the
submit page drives it: sealStart, then sealNext for one upload chunk (4 MiB) at a time, each
piece dropped once it is taken (sealing only). The baseline, measured in the same run and the
same page, reads the same file through the same File.slice calls without sealing: the rate at
which the browser can hand the Worker bytes at all. Then the real submit page sends the file to
gunicorn once, end to end (seal, upload, fsync on the server). Prints the rates, their ratios,
the rate against the issue's goal (>= 100 MB/s), the most ciphertext the submit page held at
once, and the Chromium renderer's peak RSS against the file's size. Needs Debian's chromium
and a built static/ (make static).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Browser, Route, sync_playwright
from serving import ROOT, demo_keys, gunicorn

from tests.browser.debian_chromium import launch
from tipline.crypto import format as fmt
from tipline.crypto.codename import derive, generate
from tipline.crypto.encoding import b64e
from tipline.crypto.envelope import seal
from tipline.crypto.inner import Attachment, Inner
from tipline.server.security import CSP_CRYPTO
from tipline.wordlist import load_wordlist

GOAL_MB_S = 100.0
PAGE = b"""<!doctype html><meta charset="utf-8"><title>seal bench</title>
<input type="file" id="file"><script type="module" src="bench.js"></script>"""
SCRIPT = b"""import { CryptoWorker } from "/static/js/source/common.js";
const SLICE = 1 << 20;
const PIECE = 4 << 20;
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
    const started = await worker.call("sealStart", { message: "", files, replyPublicKey });
    let size = started.header.length;
    for (let end = false; !end;) {
      const piece = await worker.call("sealNext", { stream: started.stream, max: PIECE });
      size += piece.data.byteLength;
      end = piece.end;
    }
    return { ms: performance.now() - t0, size, announced: started.size };
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
BLOB_UPLOAD = """
async ([loginToken, replyKey, headerSize]) => {
  const { Upload } = await import("/static/js/source/upload.js");
  const newSource = { loginToken, replyPublicKey: replyKey };
  const file = document.getElementById("files").files[0];
  const header = new Uint8Array(await file.slice(0, headerSize).arrayBuffer());
  const chunkSize = Number(document.getElementById("submit-form").dataset.chunkSize);
  const t0 = performance.now();
  await new Upload({ envelope: file, header, manifestVersion: 1, chunkSize, newSource }).run();
  return { ms: performance.now() - t0 };
}
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
        org, journalist, _ = demo_keys(base / "data")
        payload = base / "payload.bin"
        with payload.open("wb") as out:
            for _ in range(args.size_mib):
                out.write(os.urandom(1 << 20))
        size = payload.stat().st_size
        reply = derive(generate(load_wordlist())).reply_public_key
        reply_key = b64e(reply)
        env = {
            "TIPLINE_DATA_DIR": str(base / "data"),
            "TIPLINE_ORG_PUBLIC_KEY": b64e(org.public.public_key),
            "TIPLINE_RATELIMIT_ENABLED": "false",
            "TIPLINE_MIN_FREE_BYTES": "0",
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
                assert sealed["size"] == sealed["announced"] > size, sealed
                seal_ms.append(sealed["ms"])
                read = page.evaluate("() => window.bench.read()")
                assert read["size"] == size, read
                read_ms.append(read["ms"])
            seal_peak = max(_renderer_peaks(), default=0)
            browser.close()
            # Each phase in a browser of its own: a renderer's peak RSS is its lifetime's.
            envelope_path = base / "envelope.bin"
            _seal_in_python(payload, envelope_path, journalist.public.public_key, reply)
            browser = launch(pw)
            blob_ms, blob_peak = _blob_upload(browser, origin, envelope_path)
            browser.close()
            browser = launch(pw)
            send_ms, held, send_peak, main_peak = _submit(browser, origin, payload)
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
    send_rate = mb / (send_ms / 1000)
    blob_rate = mb / (blob_ms / 1000)
    print(
        f"submit page, sealed and sent to gunicorn: {send_rate:7.1f} MB/s (one run); "
        f"send/seal ratio {send_rate / seal_rate:.2f}"
    )
    print(
        f"baseline, uploading an envelope sealed beforehand from a File: {blob_rate:7.1f} MB/s; "
        f"streamed/pre-sealed ratio {send_rate / blob_rate:.2f}"
    )
    print(
        f"most ciphertext the submit page held at once: {held / 2**20:.1f} MiB "
        f"({held / size:.3f} of the file)"
    )
    for what, peak in (
        ("sealing only", seal_peak),
        ("uploading a pre-sealed File", blob_peak),
        ("the submit page, streamed", send_peak),
    ):
        print(
            f"largest Chromium renderer peak RSS, {what}: {peak / 2**20:.0f} MiB for a "
            f"{args.size_mib} MiB file (ratio {peak / size:.2f})"
        )
    print(
        f"Chromium's browser process peak RSS, the submit page, streamed: "
        f"{main_peak / 2**20:.0f} MiB (ratio {main_peak / size:.2f}; it holds the chunks' Blobs "
        "until the page collects them, and keeps large Blob data on disk)"
    )


def _seal_in_python(payload: Path, out: Path, recipient: bytes, reply: bytes) -> None:
    inner = Inner(
        "submission", "browser", "", reply, (Attachment("payload.bin", payload.stat().st_size, ""),)
    )
    with payload.open("rb") as src, out.open("wb") as dst:
        seal(dst, [recipient], inner, [src])


def _blob_upload(browser: Browser, origin: str, envelope_path: Path) -> tuple[float, int]:
    """Upload an envelope sealed beforehand (by Python, read from a File) with the page's own
    Upload: no sealing in the browser, the same chunks, the same server. Milliseconds, and the
    renderers' peak RSS."""
    page = browser.new_page()
    page.goto(f"{origin}/submit")
    page.locator("#send:enabled").wait_for(timeout=120_000)
    page.set_input_files("#files", str(envelope_path))
    derived = derive(generate(load_wordlist()))
    with envelope_path.open("rb") as f:
        header_size = fmt.header_size_from_prefix(f.read(11))
    result = page.evaluate(
        BLOB_UPLOAD, [b64e(derived.login_token), b64e(derived.reply_public_key), header_size]
    )
    peak = max(_renderer_peaks(), default=0)
    page.close()
    if "error" in result:
        raise SystemExit(f"bench: the pre-sealed upload failed: {result}")
    return float(result["ms"]), peak


def _submit(browser: Browser, origin: str, payload: Path) -> tuple[float, int, int, int]:
    """Send the file through the real submit page once; the time from the click to the
    codename, the most ciphertext the page held at once (its own count), and the renderers'
    peak RSS while the page is still open."""
    page = browser.new_page()
    page.goto(f"{origin}/submit")
    page.locator("#send:enabled").wait_for(timeout=120_000)
    if page.get_attribute("#submit-form", "data-sealing") != "browser":
        raise SystemExit("bench: the submit page did not take the browser path")
    page.set_input_files("#files", str(payload))
    t0 = time.perf_counter()
    page.click("#send")
    page.locator("#done").wait_for(state="visible", timeout=600_000)
    elapsed = (time.perf_counter() - t0) * 1000
    held = int(page.get_attribute("#progress-box", "data-peak-held") or 0)
    peak = max(_renderer_peaks(), default=0)
    main = max(_renderer_peaks(browser_process=True), default=0)
    page.close()
    return elapsed, held, peak, main


def _renderer_peaks(browser_process: bool = False) -> list[int]:
    """Peak RSS (VmHWM) of every Chromium renderer process running now (the page and its
    Worker live in one), or with ``browser_process`` of Chromium's main process (where Blob
    data lives), read from /proc."""
    peaks = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if browser_process:
                if not cmdline.split(b"\0")[0].endswith(b"/chromium") or b"--type=" in cmdline:
                    continue
            elif b"--type=renderer" not in cmdline:
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) * 1024)
        except (OSError, ValueError):
            continue
    return peaks


if __name__ == "__main__":
    main()
