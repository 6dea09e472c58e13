"""Benchmark the crypto core: opening an envelope against `age -d` on the same-sized payload.

    python bench/crypto.py [--size-mib 256] [--runs 3]

Prints, for opening to /dev/null and to a file, Tipline's and age's throughput, the ratio
(target >= 0.9), and each process's peak RSS (target < 64 MiB whatever the size); then libsodium.js
sealing throughput in node. Every figure is measured in this run; nothing is compared with a
number from elsewhere. Needs Debian's `age` and `node`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tipline.crypto import envelope, keys  # noqa: E402
from tipline.crypto.inner import Attachment, Inner  # noqa: E402

OPEN_SCRIPT = """
import sys
from tipline.crypto import envelope, keys
identity = keys.load_key_file(open(sys.argv[1], "rb").read())
out = open(sys.argv[3], "wb", buffering=0)
with open(sys.argv[2], "rb", buffering=0) as src:
    envelope.open_envelope(src, [identity.secret_key], lambda i, a: out)
out.close()
"""


def run(cmd: list[str]) -> tuple[float, int]:
    """Run ``cmd``; return wall seconds and the child's own peak RSS in bytes (from wait4)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"bench: {cmd[0]} failed with status {status}")
    return elapsed, usage.ru_maxrss * 1024


def best(cmd: list[str], runs: int) -> tuple[float, int]:
    results = [run(cmd) for _ in range(runs)]
    return min(r[0] for r in results), max(r[1] for r in results)


def make_inputs(folder: Path, size: int) -> tuple[Path, Path, Path, Path]:
    """A random payload of ``size`` bytes, sealed both as a Tipline envelope and with age."""
    folder.mkdir()
    plain = folder / "plain.bin"
    with plain.open("wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(size >> 20):
            f.write(block)
    identity = keys.RecipientSecret.generate("bench")
    key_file = folder / "identity.json"
    key_file.write_bytes(identity.to_json())
    sealed = folder / "plain.tipline"
    inner = Inner("submission", "server", "", bytes(32), (Attachment("plain.bin", size),))
    with plain.open("rb") as src, sealed.open("wb") as dst:
        envelope.seal(dst, [identity.public.public_key], inner, [src])
    age_key = folder / "age.key"
    subprocess.run(["age-keygen", "-o", str(age_key)], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", str(age_key)], check=True,
                               capture_output=True, text=True).stdout.strip()
    age_file = folder / "plain.age"
    subprocess.run(["age", "-r", recipient, "-o", str(age_file), str(plain)], check=True)
    return key_file, sealed, age_key, age_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for tool in ("age", "age-keygen", "node"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench: {tool} is not installed (apt-get install age nodejs)")
    size = args.size_mib << 20
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        folder = Path(tmp)
        big = make_inputs(folder / "big", size)
        small = make_inputs(folder / "small", 1 << 20)
        print(f"payload {args.size_mib} MiB, best of {args.runs} runs, "
              f"peak RSS is the worst run's")

        def ours(inputs: tuple[Path, Path, Path, Path], target: str) -> tuple[float, int]:
            return best([sys.executable, "-c", OPEN_SCRIPT, str(inputs[0]), str(inputs[1]),
                         target], args.runs)

        def age(inputs: tuple[Path, Path, Path, Path], target: str) -> tuple[float, int]:
            return best(["age", "-d", "-i", str(inputs[2]), "-o", target, str(inputs[3])],
                        args.runs)

        mb = size / 1e6
        for target in ("/dev/null", str(folder / "out.bin")):
            where = "/dev/null" if target == "/dev/null" else "a file"
            (t_ours, rss_ours), (t_age, rss_age) = ours(big, target), age(big, target)
            print(f"open to {where}: tipline {mb / t_ours:7.1f} MB/s "
                  f"(peak RSS {rss_ours / 2**20:5.1f} MiB), age -d {mb / t_age:7.1f} MB/s "
                  f"(peak RSS {rss_age / 2**20:5.1f} MiB), ratio {t_age / t_ours:.2f} "
                  f"(target >= 0.90; RSS target < 64 MiB)")
            # Each tool's fixed cost (interpreter start, imports, key loading) measured on a
            # 1 MiB payload and subtracted: the rate at which each then opens bytes.
            s_ours, s_age = ours(small, target)[0], age(small, target)[0]
            steady_ours, steady_age = (mb - 1.048576) / (t_ours - s_ours), (mb - 1.048576) / (
                t_age - s_age)
            print(f"  steady state (start-up of {s_ours * 1000:.0f} ms and {s_age * 1000:.0f} ms "
                  f"subtracted): tipline {steady_ours:7.1f} MB/s, age -d {steady_age:7.1f} MB/s, "
                  f"ratio {steady_ours / steady_age:.2f}")
        node = subprocess.run(["node", str(ROOT / "bench" / "seal_node.mjs"),
                               str(min(args.size_mib, 256))],
                              cwd=ROOT, check=True, capture_output=True, text=True)
        print(node.stdout.strip())


if __name__ == "__main__":
    main()
