"""Kill the real server (``tipline-server serve``: gunicorn with deploy/gunicorn.conf.py) with
SIGKILL at each named point between a file operation and its commit (tipline/server/faults.py),
then check that nothing is lost, nothing is half-visible, and that ``tipline-server sweep``
leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import secrets
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tipline.crypto import format as fmt
from tipline.crypto.codename import derive, generate
from tipline.crypto.encoding import b64e
from tipline.wordlist import load_wordlist

from ..deploy.conftest import configured_site, free_port, python_tool, wait_for
from .conftest import sealed_submission


@dataclass
class Site:
    """A configured, migrated and keyed tip line on SQLite."""

    base: Path
    env: dict[str, str]
    recipient: bytes

    @property
    def data(self) -> Path:
        return self.base / "data"

    def rows(self, table: str) -> list[str]:
        with contextlib.closing(sqlite3.connect(self.data / "tipline.db")) as conn:
            return sorted(r[0] for r in conn.execute(f"SELECT id FROM {table}"))

    def files(self) -> dict[str, list[str]]:
        """What is on disk under the blob store, by folder (temp files included)."""
        root = self.data / "blobs"
        out: dict[str, list[str]] = {}
        for folder in ("tmp", "uploads", "submissions", "pending/submissions"):
            out[folder] = sorted(p.name for p in (root / folder).iterdir())
        return out

    def tool(self, *args: str) -> str:
        env = {k: v for k, v in self.env.items() if k != "TIPLINE_TEST_FAULT"}
        done = subprocess.run(
            [python_tool("tipline-server"), *args], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stderr


@pytest.fixture
def site(tmp_path: Path) -> Site:
    env, _, journalist = configured_site(tmp_path, "Fault journalist")
    return Site(tmp_path, env, journalist.public.public_key)


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)


@contextlib.contextmanager
def serving(site: Site, fault: str | None) -> Iterator[Server]:
    """The real server, with the fault point ``fault`` armed (or none)."""
    port = free_port()
    env = dict(site.env)
    if fault:
        env["TIPLINE_TEST_FAULT"] = fault
    log = site.base / f"serve-{fault}-{port}.log"
    command = [python_tool("tipline-server"), "serve", "--bind", f"127.0.0.1:{port}"]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(proc, port, log)
    try:
        wait_for(lambda: _answers(server), "serve", log)
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text
    for secret in ("uploads/", "pending/", ".part"):  # no path of an upload is ever logged
        assert secret not in text, text


def _answers(server: Server) -> bool:
    try:
        with contextlib.closing(server.conn()) as conn:
            conn.request("GET", "/")
            return conn.getresponse().status == 200
    except OSError:
        return False


@dataclass
class Client:
    """A browser's session with the real server: a cookie and a CSRF token."""

    server: Server
    cookie: str = ""
    token: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, body: bytes = b"", **headers: str) -> Any:
        sent = {**self.headers, **headers}
        if self.cookie:
            sent["Cookie"] = self.cookie
        if self.token:
            sent["X-CSRFToken"] = self.token
        with contextlib.closing(self.server.conn()) as conn:
            conn.request(method, path, body=body or None, headers=sent)
            reply = conn.getresponse()
            data = reply.read()
        cookie = reply.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        if reply.getheader("Content-Type", "").startswith("application/json"):
            return reply.status, json.loads(data)
        return reply.status, data.decode("utf-8", "replace")

    def start(self) -> None:
        status, page = self.request("GET", "/submit")
        assert status == 200
        found = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert found
        self.token = found.group(1)

    def call(self, method: str, path: str, payload: Any = None) -> Any:
        body = json.dumps(payload).encode() if payload is not None else b""
        return self.request(method, path, body, **{"Content-Type": "application/json"})


def upload_whole(client: Client, site: Site) -> tuple[str, bytes]:
    """A first-time source's browser: create and upload an envelope, not yet finished."""
    derived = derive(generate(load_wordlist()))
    envelope = sealed_submission(
        [site.recipient], "a tip", {"a.txt": b"x" * 5000}, derived.reply_public_key
    )
    head = fmt.header_size_from_prefix(envelope[:11])
    status, created = client.call(
        "POST",
        "/api/source/uploads",
        {
            "manifest_version": 1,
            "header": b64e(envelope[:head]),
            "size": len(envelope),
            "login_token": b64e(derived.login_token),
            "reply_public_key": b64e(derived.reply_public_key),
        },
    )
    assert status == 201, created
    status, put = client.request(
        "PUT",
        f"/api/source/uploads/{created['id']}?offset={head}",
        envelope[head:],
        **{"Content-Type": "application/octet-stream"},
    )
    assert status == 200, put
    return created["id"], envelope


def no_js_post(client: Client, message: str) -> Any:
    boundary = "----fault" + secrets.token_hex(8)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{client.token}',
        f'--{boundary}\r\nContent-Disposition: form-data; name="message"\r\n\r\n{message}',
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename=""\r\n'
        "Content-Type: application/octet-stream\r\n\r\n",
    ]
    body = ("\r\n".join(parts) + f"\r\n--{boundary}--\r\n").encode()
    saved, client.token = client.token, ""
    try:
        return client.request(
            "POST", "/submit", body, **{"Content-Type": f"multipart/form-data; boundary={boundary}"}
        )
    finally:
        client.token = saved


def killed(call: Any) -> bool:
    """Whether the request died with its worker (no answer at all)."""
    try:
        call()
    except (http.client.RemoteDisconnected, ConnectionResetError, http.client.IncompleteRead):
        return True
    return False


def assert_clean(site: Site) -> None:
    """Every file has its row and every row its file; no temp file, nothing pending astray."""
    files = site.files()
    stored = sorted(files["submissions"] + files["pending/submissions"])
    assert stored == site.rows("submissions")
    assert files["uploads"] == sorted(f"{u}.part" for u in site.rows("uploads"))
    assert files["tmp"] == []


def journalist_token(site: Site) -> str:
    code = (
        "from tipline.server import create_app, db, accounts\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        "    a = accounts.create(db.session(), 'faultdesk', accounts.generate_passphrase())\n"
        "    a.totp_secret = 'JBSWY3DPEHPK3PXP'  # enrolled (tokens need two-factor login)\n"
        "    print(accounts.new_token(db.session(), a, 'usb'))\n"
    )
    env = {k: v for k, v in site.env.items() if k != "TIPLINE_TEST_FAULT"}
    done = subprocess.run(
        [python_tool("python"), "-c", code], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_kill_between_finish_move_and_commit(site: Site) -> None:
    with serving(site, "finish-moved") as server:
        client = Client(server)
        client.start()
        upload_id, envelope = upload_whole(client, site)
        assert killed(lambda: client.call("POST", f"/api/source/uploads/{upload_id}/finish"))
        # Nothing half-visible: no submission, no source; the upload and its bytes are kept.
        assert site.rows("submissions") == [] and site.rows("sources") == []
        assert site.rows("uploads") == [upload_id]
        assert site.files()["pending/submissions"] == [upload_id]  # moved, not committed
    with serving(site, None) as server:
        client.server = server
        # The page retries its finish (with the session it had): stored, from the same bytes.
        status, done = client.call("POST", f"/api/source/uploads/{upload_id}/finish")
        assert status == 201, done
    assert site.rows("submissions") == [upload_id] and len(site.rows("sources")) == 1
    path = site.data / "blobs" / "pending" / "submissions" / upload_id
    assert path.read_bytes() == envelope
    site.tool("sweep", "--grace", "0")
    assert_clean(site)
    assert site.rows("submissions") == [upload_id]


def test_kill_between_finish_move_and_commit_then_the_sweeper(site: Site) -> None:
    with serving(site, "finish-moved") as server:
        client = Client(server)
        client.start()
        upload_id, envelope = upload_whole(client, site)
        assert killed(lambda: client.call("POST", f"/api/source/uploads/{upload_id}/finish"))
    out = site.tool("sweep", "--grace", "0")
    assert "gave 1 interrupted uploads back" in out
    assert (site.data / "blobs" / "uploads" / f"{upload_id}.part").read_bytes() == envelope
    assert_clean(site)


def test_kill_between_blob_and_row(site: Site) -> None:
    with serving(site, "blob-written") as server:
        client = Client(server)
        client.start()
        assert killed(lambda: no_js_post(client, "a no-JS tip"))
        assert site.rows("submissions") == [] and site.rows("sources") == []
        assert len(site.files()["pending/submissions"]) == 1  # ciphertext nobody can reach
    out = site.tool("sweep", "--grace", "0")
    assert "removed 1 orphan blobs" in out
    assert_clean(site)
    assert site.files()["pending/submissions"] == []


def test_kill_between_upload_file_and_row(site: Site) -> None:
    with serving(site, "upload-created") as server:
        client = Client(server)
        client.start()
        assert killed(lambda: upload_whole(client, site))
        assert site.rows("uploads") == [] and len(site.files()["uploads"]) == 1
    assert "1 orphan upload files" in site.tool("sweep", "--grace", "0")
    assert_clean(site)
    assert site.files()["uploads"] == []


def test_kill_between_delete_commit_and_file_removal(site: Site) -> None:
    token = journalist_token(site)
    with serving(site, "delete-committed") as server:
        source = Client(server)
        source.start()
        status, _page = no_js_post(source, "kept, then deleted")
        assert status == 200
        (stored,) = site.rows("submissions")
        desk = Client(server, headers={"Authorization": f"Bearer {token}"})
        assert killed(
            lambda: desk.call(
                "POST", "/api/journalist/submissions/delete", {"ids": [stored], "confirm": True}
            )
        )
        # The interface would say deleted (the row is gone); the ciphertext is still there...
        assert site.rows("submissions") == []
        assert site.files()["pending/submissions"] == [stored]
    # ...until the sweep.
    assert "removed 1 orphan blobs" in site.tool("sweep", "--grace", "0")
    assert_clean(site)
    assert site.files()["pending/submissions"] == []


def test_control_without_a_fault_nothing_is_killed(site: Site) -> None:
    with serving(site, None) as server:
        client = Client(server)
        client.start()
        upload_id, _envelope = upload_whole(client, site)
        answers: list[Any] = []
        assert not killed(
            lambda: answers.append(client.call("POST", f"/api/source/uploads/{upload_id}/finish"))
        )
        assert answers[0][0] == 201
        client.token = answers[0][1]["csrf_token"]  # logged in: a new session
        status, _page = no_js_post(client, "second")
        assert status == 200
    assert len(site.rows("submissions")) == 2
    assert "removed 0 orphan blobs" in site.tool("sweep", "--grace", "0")
    assert_clean(site)
