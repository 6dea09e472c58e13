"""Benchmark safe viewing copies: pages per second against `pdftoppm` alone, and the desk's memory.

    python bench/convert.py                  # 100 pages of text, and one very large page
    python bench/convert.py --pages 300      # the size the issue names
    make bench-convert                       # the quick run, after installing

1. Speed. A PDF of --pages pages of dense text is made here. The baseline is poppler's
   `pdftoppm` alone rendering every page at the same resolution (150 dpi) to /dev/null: the
   rendering floor, since the viewing copy renders with the same program. Then the same PDF,
   sealed in a real submission and imported into a vault, is exported as a viewing copy: the
   envelope opened, the original streamed into the sandbox, rendered there, every page read
   back through the bounded pixel stream, rebuilt as a PDF page and joined. The ratio is our
   pages per second over pdftoppm's (target >= 0.5), best of --runs of each, in the same run.
2. Memory. The export runs in a process of its own, which reports its own peak RSS (VmHWM: the
   sandbox's programs are other processes). Target < 200 MiB,
   whatever the document: it is measured for the --pages document and for a one-page PDF whose
   page is 200 inches square (the largest page the bounds allow is rendered: 20 megapixels).
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tipline.bundle import KIND_EXPORT, ExportItem, write_bundle  # noqa: E402
from tipline.crypto import envelope  # noqa: E402
from tipline.crypto.codename import derive, generate  # noqa: E402
from tipline.crypto.inner import Attachment, Inner  # noqa: E402
from tipline.desk.importer import import_bundle  # noqa: E402
from tipline.desk.vault import Vault, today  # noqa: E402
from tipline.wordlist import load_wordlist  # noqa: E402

PASS = "benchmark passphrase"
DPI = 150
LINE = "The minister's office paid the harbour contractor twice for the same dredging work. "


def text_pdf(pages: int, side_pt: int = 0) -> bytes:
    """A PDF of ``pages`` pages of 50 lines of text each (or one page ``side_pt`` points square)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    kids = []
    width, height = (side_pt, side_pt) if side_pt else (612, 792)
    for n in range(pages):
        lines = [
            f"BT /F1 10 Tf 40 {height - 40 - 14 * i} Td ({LINE[:90]} {n}.{i}) Tj ET"
            for i in range(50)
        ]
        content = "\n".join(lines).encode()
        kids.append(len(objects) + 1)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /Font"
            b" << /F1 3 0 R >> >> /Contents %d 0 R >>" % (width, height, len(objects) + 2)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        pages,
    )
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def vault_with(folder: Path, pdf: bytes) -> tuple[Path, str]:
    """A vault holding one imported submission with ``pdf`` attached."""
    path = folder / "vault"
    vault = Vault.create(path, PASS, kdf="test")
    vault.keyring.add("Bench", today())
    vault.save_keyring()
    keys = derive(generate(load_wordlist()))
    inner = Inner(
        "submission",
        "browser",
        "bench",
        keys.reply_public_key,
        (Attachment("document.pdf", len(pdf), "application/pdf"),),
    )
    sealed = io.BytesIO()
    pk = [r.secret.public.public_key for r in vault.keyring.active()]
    envelope.seal(sealed, pk, inner, [io.BytesIO(pdf)])
    item = ExportItem("ab" * 16, "cd" * 16, "bench source", "2026-11-20", len(sealed.getvalue()))
    bundle = io.BytesIO()
    write_bundle(bundle, KIND_EXPORT, [item], lambda _: io.BytesIO(sealed.getvalue()))
    bundle.seek(0)
    report = import_bundle(vault, bundle)
    assert report.ok, report
    vault.close()
    return path, item.id


# The export, in a process of its own, timed around the export alone; it reports its own RSS.
EXPORT = """
import json, re, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from tipline.desk.safe.converter import load_config, make_converter
from tipline.desk.safe.export import Options, export, prepare
from tipline.desk.vault import Vault
with Vault.open(Path(sys.argv[1]), sys.argv[3]) as vault:
    source = prepare(vault, sys.argv[2])
out = Path(sys.argv[5])
started = time.perf_counter()
report = export(source, out, make_converter(load_config()), Options())
seconds = time.perf_counter() - started
assert report.ok, report
peak = re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)
print(json.dumps({"seconds": seconds, "rss_mib": int(peak) / 1024}))
"""


def export_once(vault: Path, item: str, out: Path) -> dict[str, float]:
    for old in out.iterdir():
        old.unlink()
    done = subprocess.run(
        [sys.executable, "-c", EXPORT, str(vault), item, PASS, str(ROOT), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def pdftoppm_once(pdf: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["pdftoppm", "-r", str(DPI), str(pdf)], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-convert-") as tmp:
        folder = Path(tmp)
        pdf = text_pdf(args.pages)
        (folder / "doc.pdf").write_bytes(pdf)
        vault, item = vault_with(folder, pdf)
        out = folder / "out"
        out.mkdir()
        floor = min(pdftoppm_once(folder / "doc.pdf") for _ in range(args.runs))
        runs = [export_once(vault, item, out) for _ in range(args.runs)]
        ours = min(r["seconds"] for r in runs)
        rss = max(r["rss_mib"] for r in runs)
        print(f"document: {args.pages} pages of text, {len(pdf) / 1024:.0f} KiB, {DPI} dpi")
        print(f"pdftoppm alone (baseline): {floor:.2f} s, {args.pages / floor:.1f} pages/s")
        print(
            f"viewing copy (sandbox, pixels, rebuilt PDF): {ours:.2f} s, "
            f"{args.pages / ours:.1f} pages/s"
        )
        print(f"ratio: {floor / ours:.2f} (target >= 0.5)")
        print(f"desk peak RSS: {rss:.0f} MiB (target < 200)")

        huge = text_pdf(1, side_pt=14_400)
        (folder / "huge").mkdir()
        big_vault, big_item = vault_with(folder / "huge", huge)
        result = export_once(big_vault, big_item, out)
        print(
            f"one 200-inch page (rendered at the 20-megapixel bound): {result['seconds']:.2f} s,"
            f" desk peak RSS {result['rss_mib']:.0f} MiB (target < 200)"
        )


if __name__ == "__main__":
    main()
