"""The browser path's upload to the S3 blob store (a real SeaweedFS on loopback,
tests/s3_server.py) against the local folder, and the journalist export of that tip from each,
in the same run: one gunicorn worker each, the same envelope and chunk size. Prints each
throughput, the ratios (target >= 0.7 for the upload) and the worker's peak RSS in each phase
(target < 100 MiB).

    python bench/s3.py [--size-mib 256] [--chunk-mib 8]

On S3 each chunk is one part of a multipart upload begun at the upload's start and the finish
completes it (s3store.py): the finish is timed with the upload, as is the local rename. The
export is ``POST /api/journalist/export`` read to its end by this process (the bundle streams
from the store through the worker). The chunk size is the app's default (8 MiB); on S3 it must
be 5 to 8 MiB (each chunk but the last is one part).
"""

from __future__ import annotations

import argparse
import http.client
import json
import tempfile
import time
from pathlib import Path

from serving import (
    ROOT,
    Session,
    _cpu_seconds,
    demo_keys,
    gunicorn,
    peak_rss,
    server_cpu,
    tipline_env,
    worker_pids,
)
from upload import MIB, Pattern, send_envelope

from tests.s3_server import Seaweed
from tipline.crypto.envelope import seal
from tipline.crypto.inner import Attachment, Inner

# SeaweedFS as deployed (docs/DEPLOY.md "Blobs in S3"), not as the tests run it: volumes of
# 1 GiB (the tests' 64 MiB ones save disk; a fresh volume every 64 MiB costs time) and the filer
# storing a part as chunks of up to 16 MiB (its default is 4).
SEAWEED_SETTINGS = ("-master.volumeSizeLimitMB=1024", "-filer.maxMB=16")


def sealed(journalist: bytes, reply_key: bytes, size: int, folder: Path) -> Path:
    """An envelope of an attachment of ``size`` bytes, sealed here (as the browser would)."""
    envelope = folder / "envelope.bin"
    inner = Inner("submission", "browser", "bench", reply_key, (Attachment("big.bin", size),))
    with envelope.open("wb") as out:
        seal(out, [journalist], inner, [Pattern(size)])
    return envelope


def export(port: int, token: str, upload_id: str) -> tuple[int, float]:
    """Time one export of the tip, read to its end; its size in bytes and the seconds."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    start = time.monotonic()
    conn.request(
        "POST",
        "/api/journalist/export",
        body=json.dumps({"ids": [upload_id], "mark_downloaded": False}),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    response = conn.getresponse()
    assert response.status == 200, response.read(300)
    size = 0
    while piece := response.read(MIB):
        size += len(piece)
    elapsed = time.monotonic() - start
    conn.close()
    return size, elapsed


def journalist_token(data: Path, org_public: str) -> str:
    """An API token of a journalist account made for the bench (two-factor enrolled)."""
    from tipline.server import accounts, create_app, db

    app = create_app({"DATA_DIR": str(data), "ORG_PUBLIC_KEY": org_public})
    with app.app_context():
        account = accounts.create(db.session(), "bench", accounts.generate_passphrase())
        account.totp_secret = "JBSWY3DPEHPK3PXP"  # tokens need an enrolled second factor
        token = accounts.new_token(db.session(), account, "bench")
    db.engine_of(app).dispose()
    return str(token)


def reset_peak(pids: list[int]) -> None:
    """Start each process's peak RSS (VmHWM) over from its current RSS (Linux clear_refs)."""
    for pid in pids:
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--chunk-mib", type=int, default=8)
    args = parser.parse_args()
    size, chunk = args.size_mib * MIB, args.chunk_mib * MIB
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        base = Path(tmp)
        seaweed = Seaweed(base / "seaweed", SEAWEED_SETTINGS)
        seaweed.start()
        try:
            org, journalist, _ = demo_keys(base / "data")
            common = {**tipline_env(base / "data", org), "TIPLINE_MAX_CHUNK_SIZE": str(chunk)}
            token = journalist_token(base / "data", common["TIPLINE_ORG_PUBLIC_KEY"])
            s3 = {f"TIPLINE_{k}": v for k, v in seaweed.settings(seaweed.new_bucket()).items()}
            results, cpus = {}, {}
            assert seaweed.proc is not None
            seaweed_pid = seaweed.proc.pid
            for name, env in (("local", common), ("s3", {**common, **s3})):
                with gunicorn("tipline.server.wsgi:app", env, 1) as (port, master):
                    session = Session(port)
                    envelope = sealed(journalist.public.public_key, session.register(), size, base)
                    cpu = server_cpu(master.pid), _cpu_seconds(seaweed_pid)
                    upload_id, up = send_envelope(envelope, chunk, session)
                    cpu_app = server_cpu(master.pid) - cpu[0]
                    cpu_weed = _cpu_seconds(seaweed_pid) - cpu[1]
                    envelope.unlink()
                    pids = worker_pids(master.pid)
                    up_rss = max(peak_rss(pid) for pid in pids)
                    reset_peak(pids)
                    exported, down = export(port, token, upload_id)
                    down_rss = max(peak_rss(pid) for pid in pids)
                results[name] = (up, up_rss, down, down_rss, exported)
                cpus[name] = (cpu_app, cpu_weed)
        finally:
            seaweed.stop()
    mibs = size / MIB
    for name, (up, up_rss, down, down_rss, exported) in results.items():
        print(
            f"{name:6s} upload {mibs:.0f} MiB in {chunk // MIB} MiB chunks: {mibs / up:8.1f} MiB/s"
            f"  worker peak RSS {up_rss / MIB:.1f} MiB (target < 100)"
        )
        print(
            f"{'':6s}   CPU during the upload: app server {cpus[name][0]:.1f} s, "
            f"SeaweedFS {cpus[name][1]:.1f} s (idle for local)"
        )
        print(
            f"{name:6s} export ({exported / MIB:.0f} MiB bundle):       "
            f"{exported / MIB / down:8.1f} MiB/s  worker peak RSS {down_rss / MIB:.1f} MiB"
        )
    ratio = results["local"][0] / results["s3"][0]
    print(f"S3 / local upload throughput: {ratio:.2f} (target >= 0.7)")
    print(f"S3 / local export throughput: {results['local'][2] / results['s3'][2]:.2f}")


if __name__ == "__main__":
    main()
