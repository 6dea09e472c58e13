"""Shared by bench/submit.py and bench/upload.py: a demo tip line under gunicorn on loopback,
and a baseline Flask app that only writes each request body to a file.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Both the tip line and the baseline run under the deployed gunicorn settings (gthread workers
# and threads, timeouts, limits); only the bind address and the worker count are overridden.
DEPLOY_CONF = ROOT / "deploy" / "gunicorn.conf.py"
sys.path.insert(0, str(ROOT))

from tipline.crypto import keys, manifest  # noqa: E402
from tipline.crypto.codename import derive, generate  # noqa: E402
from tipline.crypto.encoding import b64e  # noqa: E402
from tipline.wordlist import load_wordlist  # noqa: E402

BASELINE_APP = """
import os, uuid
from flask import Flask, request
app = Flask(__name__)
FOLDER = os.environ["BENCH_BASELINE_DIR"]
@app.post("/<path:_any>")
def store(_any):
    path = os.path.join(FOLDER, uuid.uuid4().hex)
    with open(path, "wb") as out:
        while True:
            piece = request.stream.read(1 << 16)
            if not piece:
                break
            out.write(piece)
        out.flush()
        os.fsync(out.fileno())
    return "ok"
"""


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_keys(data_dir: Path) -> tuple[keys.OrgSecret, keys.RecipientSecret, bytes]:
    """An org key, a journalist and a signed manifest, installed in ``data_dir``'s database."""
    from tipline.server import create_app, db, keyset

    org = keys.OrgSecret.generate()
    journalist = keys.RecipientSecret.generate("Bench journalist")
    today = datetime.datetime.now(datetime.UTC).date()
    signed = manifest.sign_manifest(org, 1, [journalist.public], today, today)
    app = create_app({"DATA_DIR": str(data_dir), "ORG_PUBLIC_KEY": b64e(org.public.public_key)})
    with app.app_context():
        keyset.install(db.session(), signed, org.public.public_key)
    db.engine_of(app).dispose()
    return org, journalist, signed


def tipline_env(data_dir: Path, org: keys.OrgSecret) -> dict[str, str]:
    """The tip line's environment for a bench: ``data_dir`` (see ``demo_keys``) and the org
    key, with rate limits off and no free-space floor.
    """
    return {
        "TIPLINE_DATA_DIR": str(data_dir),
        "TIPLINE_ORG_PUBLIC_KEY": b64e(org.public.public_key),
        "TIPLINE_RATELIMIT_ENABLED": "false",
        "TIPLINE_MIN_FREE_BYTES": "0",
    }


@contextmanager
def gunicorn(
    app: str, env: dict[str, str], workers: int
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Run gunicorn with deploy/gunicorn.conf.py (``workers`` overriding its count) on a
    loopback port; yield the port and the master process.
    """
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(DEPLOY_CONF),
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            app,
        ],
        # MALLOC_ARENA_MAX as deploy/systemd/tipline.service sets it, so RSS is the deployed one.
        env={**os.environ, "MALLOC_ARENA_MAX": "2", **env},
        cwd=ROOT,
    )
    try:
        for _ in range(400):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"gunicorn for {app} stopped at start (status {proc.returncode})"
                )
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/nothing")
                conn.getresponse().read()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"gunicorn for {app} did not answer within 20 s")
        yield port, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def worker_pids(master: int) -> list[int]:
    """gunicorn's worker processes (children of the master)."""
    out = subprocess.run(
        ["/usr/bin/pgrep", "-P", str(master)], capture_output=True, text=True, check=False
    )
    return [int(p) for p in out.stdout.split()]


def _cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU of a process (and of its children it has reaped, if asked)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    ticks = utime + stime + (cutime + cstime if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def server_cpu(master: int) -> float:
    """CPU seconds used so far by a gunicorn master and all its workers, including workers
    already recycled (``max_requests``) and reaped.
    """
    total = _cpu_seconds(master, children=True)
    for pid in worker_pids(master):
        # A worker that exited just now is counted with the master's children once reaped.
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += _cpu_seconds(pid)
    return total


def peak_rss(pid: int) -> int:
    """A process's peak resident set size in bytes (VmHWM)."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(found.group(1)) * 1024 if found else 0


class Session:
    """A cookie and CSRF token, as a browser would keep them."""

    def __init__(self, port: int) -> None:
        self.port, self.cookie, self.token = port, "", ""
        self.new_source: dict[str, str] | None = None
        self.refresh()

    def request(
        self, method: str, path: str, body: object = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        all_headers = {"Cookie": self.cookie, "X-CSRFToken": self.token, **(headers or {})}
        conn.request(method, path, body=body, headers=all_headers)  # type: ignore[arg-type]
        response = conn.getresponse()
        data = response.read()
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        conn.close()
        return response.status, data

    def refresh(self) -> None:
        _, page = self.request("GET", "/submit")
        found = re.search(rb'name="csrf-token" content="([^"]+)"', page)
        assert found, page[:300]
        self.token = found.group(1).decode()

    def register(self) -> bytes:
        """Make a new codename as the submit page does; its login token and reply key go with
        the first upload (the source is stored when it finishes). Return the reply public key.
        """
        derived = derive(generate(load_wordlist()))
        self.new_source = {
            "login_token": b64e(derived.login_token),
            "reply_public_key": b64e(derived.reply_public_key),
        }
        return derived.reply_public_key

    def create_upload(self, header: bytes, size: int) -> str:
        """Announce an upload of an envelope of ``size`` bytes with this header; return its id."""
        body = {"manifest_version": 1, "header": b64e(header), "size": size}
        body.update(self.new_source or {})
        status, data = self.request(
            "POST",
            "/api/source/uploads",
            json.dumps(body),
            {"Content-Type": "application/json"},
        )
        assert status == 201, data
        return str(json.loads(data)["id"])

    def put_chunk(self, upload_id: str, offset: int, piece: bytes) -> int:
        """Send the bytes at ``offset``; return how many bytes the server now has."""
        status, data = self.request(
            "PUT",
            f"/api/source/uploads/{upload_id}?offset={offset}",
            piece,
            {"Content-Type": "application/octet-stream"},
        )
        assert status == 200, data
        return int(json.loads(data)["received"])

    def finish_upload(self, upload_id: str) -> None:
        """Finish an upload: the server checks and stores the envelope."""
        status, data = self.request("POST", f"/api/source/uploads/{upload_id}/finish")
        assert status == 201, data
        # A first-time source is logged in now: a new session with a new token.
        self.token = str(json.loads(data)["csrf_token"])
        self.new_source = None
