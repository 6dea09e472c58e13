"""A large upload on each submission path, through gunicorn on loopback: the server worker's
peak RSS (target < 100 MiB whatever the size) and throughput against writing the same bytes to
disk (write + fsync) in this process.

    python bench/upload.py [--size-mib 1024] [--chunk-mib 4]

- browser path: the envelope is sealed here first (as the browser would), then sent with the
  resumable upload API in chunks; only the upload is timed;
- no-JS path: one multipart form POST streaming a file of that size; the server spools it
  encrypted, then seals it to the journalist key (two passes over the data, both timed).
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from serving import ROOT, Session, demo_keys, gunicorn, peak_rss, tipline_env, worker_pids

from tipline.crypto import format as fmt
from tipline.crypto.envelope import seal
from tipline.crypto.inner import Attachment, Inner

MIB = 1 << 20


class Pattern(io.RawIOBase):
    """``size`` bytes of a repeating pattern, read in pieces: no big buffer on the client."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.block = os.urandom(MIB)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1, /) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        n = min(n, len(self.block))
        self.left -= n
        return self.block[:n]


def baseline(size: int, folder: Path) -> float:
    """Seconds to write ``size`` bytes to a file and fsync it."""
    source = Pattern(size)
    start = time.monotonic()
    with (folder / "baseline.bin").open("wb") as out:
        while piece := source.read(MIB):
            out.write(piece)
        out.flush()
        os.fsync(out.fileno())
    elapsed = time.monotonic() - start
    (folder / "baseline.bin").unlink()
    return elapsed


def browser_path(port: int, size: int, chunk: int, journalist: bytes, folder: Path) -> float:
    """Seal here, then time the chunked upload and finish."""
    session = Session(port)
    reply_key = session.register()
    envelope = folder / "envelope.bin"
    inner = Inner("submission", "browser", "bench", reply_key, (Attachment("big.bin", size),))
    with envelope.open("wb") as out:
        seal(out, [journalist], inner, [Pattern(size)])
    _, elapsed = send_envelope(envelope, chunk, session)
    envelope.unlink()
    return elapsed


def send_envelope(envelope: Path, chunk: int, session: Session) -> tuple[str, float]:
    """Time the chunked upload of a sealed envelope file and its finish, as the page sends
    them (header first, then ``chunk`` bytes a request); the upload's id and the seconds."""
    total = envelope.stat().st_size
    with envelope.open("rb") as src:
        prefix = src.read(11)
        header = prefix + src.read(fmt.header_size_from_prefix(prefix) - len(prefix))
        start = time.monotonic()
        upload_id, offset = session.create_upload(header, total), len(header)
        while offset < total:
            offset = session.put_chunk(upload_id, offset, src.read(chunk))
        session.finish_upload(upload_id)
    return upload_id, time.monotonic() - start


def form_parts(token: str, size: int, boundary: str) -> Iterator[bytes]:
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="message"\r\n\r\nbench\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    source = Pattern(size)
    while piece := source.read(MIB):
        yield piece
    yield f"\r\n--{boundary}--\r\n".encode()


def form_path(port: int, size: int) -> float:
    """Time one streamed multipart POST of ``size`` bytes."""
    session = Session(port)
    boundary = uuid.uuid4().hex
    head = next(form_parts(session.token, 0, boundary))
    length = len(head) + size + len(f"\r\n--{boundary}--\r\n")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    start = time.monotonic()
    conn.putrequest("POST", "/submit")
    conn.putheader("Cookie", session.cookie)
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(length))
    conn.endheaders()
    for part in form_parts(session.token, size, boundary):
        conn.send(part)
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200, body[:500]
    elapsed = time.monotonic() - start
    conn.close()
    return elapsed


def main() -> None:
    """Measure the baseline and both paths; print throughput, ratio and peak RSS."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--chunk-mib", type=int, default=4)
    args = parser.parse_args()
    size = args.size_mib * MIB
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        base = Path(tmp)
        disk = baseline(size, base)
        org, journalist, _ = demo_keys(base / "data")
        env = {
            **tipline_env(base / "data", org),
            "TIPLINE_MAX_CHUNK_SIZE": str(max(args.chunk_mib, 1) * MIB),
        }
        results = {}
        for name in ("browser", "form"):
            # A fresh single worker per path, so its peak RSS is that path's alone.
            with gunicorn("tipline.server.wsgi:app", env, 1) as (port, master):
                if name == "browser":
                    elapsed = browser_path(
                        port, size, args.chunk_mib * MIB, journalist.public.public_key, base
                    )
                else:
                    elapsed = form_path(port, size)
                rss = max(peak_rss(pid) for pid in worker_pids(master.pid))
            results[name] = (elapsed, rss)
    mibs = size / MIB
    print(f"baseline: write {mibs:.0f} MiB + fsync: {mibs / disk:8.1f} MiB/s")
    for name, (elapsed, rss) in results.items():
        label = {"browser": "browser path (chunked API)", "form": "no-JS path (form, sealed)"}[name]
        print(
            f"{label:28s} {mibs / elapsed:8.1f} MiB/s  ratio {disk / elapsed:.2f}  "
            f"server worker peak RSS {rss / MIB:.1f} MiB (target < 100)"
        )


if __name__ == "__main__":
    main()
