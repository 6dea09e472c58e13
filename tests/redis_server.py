"""A throwaway redis-server for the tests and benchmarks that need one (the app limits' and the
cache stamp's shared storage): Debian's ``redis-server`` on a Unix socket, no TCP port, nothing
saved, as deploy/systemd/tipline-redis.service runs it."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """Run redis-server with its socket in ``folder`` (made if missing); yield its URI."""
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server is missing: run tools/test-deps.sh")
    folder.mkdir(exist_ok=True)
    sock = folder / "redis.sock"
    proc = subprocess.Popen(
        [server, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
         "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)
        yield f"redis+unix://{sock}"
    finally:
        proc.terminate()
        proc.wait(10)
