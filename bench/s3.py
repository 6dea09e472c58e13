"""The browser path's upload to the S3 blob store against the local folder, in the same run:
one gunicorn worker each, a real SeaweedFS on loopback (tests/s3_server.py), the same envelope
size and chunk size. Prints each throughput, the ratio (target >= 0.7) and the worker's peak RSS
(target < 100 MiB).

    python bench/s3.py [--size-mib 256] [--chunk-mib 4]

On S3 the finish composes the chunks into one object (read back and written again through a
multipart upload), so its cost is part of what is timed, as is the local rename.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from serving import ROOT, demo_keys, gunicorn, peak_rss, tipline_env, worker_pids
from upload import MIB, browser_path

from tests.s3_server import Seaweed

# bench/limits.py would shadow the limits package the app imports (in demo_keys' create_app).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--chunk-mib", type=int, default=4)
    args = parser.parse_args()
    size, chunk = args.size_mib * MIB, args.chunk_mib * MIB
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        base = Path(tmp)
        seaweed = Seaweed(base / "seaweed")
        seaweed.start()
        try:
            org, journalist, _ = demo_keys(base / "data")
            common = {**tipline_env(base / "data", org), "TIPLINE_MAX_CHUNK_SIZE": str(chunk)}
            s3 = {f"TIPLINE_{k}": v for k, v in seaweed.settings(seaweed.new_bucket()).items()}
            results = {}
            for name, env in (("local", common), ("s3", {**common, **s3})):
                with gunicorn("tipline.server.wsgi:app", env, 1) as (port, master):
                    elapsed = browser_path(port, size, chunk, journalist.public.public_key, base)
                    rss = max(peak_rss(pid) for pid in worker_pids(master.pid))
                results[name] = (elapsed, rss)
        finally:
            seaweed.stop()
    mibs = size / MIB
    for name, (elapsed, rss) in results.items():
        print(
            f"{name:6s} upload {mibs:.0f} MiB in {chunk // MIB} MiB chunks: "
            f"{mibs / elapsed:8.1f} MiB/s  worker peak RSS {rss / MIB:.1f} MiB (target < 100)"
        )
    ratio = results["local"][0] / results["s3"][0]
    print(f"S3 / local throughput: {ratio:.2f} (target >= 0.7)")


if __name__ == "__main__":
    main()
