"""The whole server stack from the shipped files: gunicorn with deploy/gunicorn.conf.py behind
nginx with deploy/nginx/, on loopback, configured by a TOML file as the installer writes it,
migrated and keyed with the ``tipline-server`` commands the installer runs. A source submits
through nginx on both paths; the headers, the limits, the split between the two onions and
the logs are checked on what actually went over the sockets.
"""

from __future__ import annotations

import base64
import io
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from tipline.crypto import format as fmt
from tipline.crypto import keys
from tipline.crypto.codename import derive, generate
from tipline.crypto.encoding import b64e
from tipline.crypto.envelope import open_envelope, seal
from tipline.crypto.inner import Attachment, Inner
from tipline.server import create_app, db
from tipline.server.models import Submission
from tipline.server.security import CSP_CRYPTO, CSP_PLAIN
from tipline.wordlist import load_wordlist

from .conftest import (
    CLIENT_ADDR,
    DISTINCTIVE,
    Client,
    Nginx,
    Response,
    configured_site,
    csrf_token,
    gunicorn_command,
    multipart,
    render_nginx,
    source_client,
    start_nginx,
    wait_for,
)

SECURITY_HEADERS = (
    "Content-Security-Policy",
    "Referrer-Policy",
    "Cache-Control",
    "Pragma",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Cross-Origin-Opener-Policy",
    "Cross-Origin-Resource-Policy",
    "Permissions-Policy",
)


@dataclass
class Stack:
    base: Path
    nginx: Nginx
    gunicorn_log: Path
    journalist: keys.RecipientSecret
    app: Flask  # the same configuration, for looking into the database and blob store

    def source(self) -> Client:
        return source_client(self.nginx.source_port)

    def staff(self) -> Client:
        return Client(self.nginx.journalist_port)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("stack")
    data, tmp = base / "data", base / "tmp"
    tmp.mkdir()
    # What the installer does: write the config, migrate, install the signed key manifest.
    env, org, journalist = configured_site(base, "Deploy journalist")
    env["TMPDIR"] = str(tmp)
    sock = base / "gunicorn.sock"
    log = base / "gunicorn.log"
    with log.open("wb") as out:
        gunicorn = subprocess.Popen(
            gunicorn_command(sock),
            env=env,
            cwd=base,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    nginx = render_nginx(base / "nginx", sock)
    app = create_app({"DATA_DIR": str(data), "ORG_PUBLIC_KEY": b64e(org.public.public_key)})
    try:
        wait_for(lambda: sock.exists(), "gunicorn", log)
        start_nginx(nginx)
        wait_for(
            lambda: source_client(nginx.source_port).request("GET", "/").status == 200, "app", log
        )
        yield Stack(base, nginx, log, journalist, app)
    finally:
        nginx.stop()
        gunicorn.terminate()
        gunicorn.wait(timeout=30)
        db.engine_of(app).dispose()


def stored(stack: Stack, message: str) -> Inner:
    """The one stored submission whose message is ``message``, opened with the journalist key."""
    with stack.app.app_context():
        rows = db.session().scalars(select(Submission)).all()
        for row in rows:
            with stack.app.extensions["tipline.blobs"].open("submissions", row.id) as blob:
                inner = open_envelope(blob, [stack.journalist.secret_key])
            if inner.message == message:
                return inner
    pytest.fail(f"no stored submission says {message!r} (of {len(rows)})")


def app_headers(stack: Stack, path: str) -> dict[str, str]:
    """The security headers the app itself sends for ``path`` (no nginx in between)."""
    with stack.app.test_client() as client:
        reply = client.get(path)
        reply.close()  # a static file's handle
    return {name: reply.headers[name] for name in SECURITY_HEADERS}


def assert_security_headers(reply: Response, expected: dict[str, str]) -> None:
    for name, value in expected.items():
        assert reply.headers.get_all(name) == [value], (name, reply.headers.get_all(name))
    assert reply.headers.get("Server") is None
    assert reply.headers.get("Last-Modified") is None


def test_no_js_form_submission_through_nginx(stack: Stack) -> None:
    client = stack.source()
    page = client.request("GET", "/submit")
    assert page.status == 200
    body, content_type = multipart(
        {"csrf_token": csrf_token(page), "message": "sent through nginx, no JS"},
        {"notes.txt": b"attachment bytes " * 5000},
    )
    reply = client.request("POST", "/submit", body, {"Content-Type": content_type})
    assert reply.status == 200, reply.text[:500]
    inner = stored(stack, "sent through nginx, no JS")
    assert inner.sealed_by == "server"
    assert [(a.name, a.size) for a in inner.attachments] == [("notes.txt", 17 * 5000)]


def test_api_upload_through_nginx(stack: Stack) -> None:
    client = stack.source()
    token = csrf_token(client.request("GET", "/submit"))
    derived = derive(generate(load_wordlist()))

    def call(method: str, path: str, body: bytes, content_type: str) -> Response:
        return client.request(
            method, path, body, {"X-CSRFToken": token, "Content-Type": content_type}
        )

    inner = Inner(
        kind="submission",
        sealed_by="browser",
        message="sealed in the browser, uploaded through nginx",
        reply_public_key=derived.reply_public_key,
        attachments=(Attachment("big.bin", 300_000, "application/octet-stream"),),
    )
    out = io.BytesIO()
    seal(out, [stack.journalist.public.public_key], inner, [io.BytesIO(os.urandom(300_000))])
    envelope = out.getvalue()
    head = fmt.header_size_from_prefix(envelope[:11])
    created = call(
        "POST",
        "/api/source/uploads",
        (
            f'{{"manifest_version": 1, "header": "{b64e(envelope[:head])}", '
            f'"size": {len(envelope)}, "login_token": "{b64e(derived.login_token)}", '
            f'"reply_public_key": "{b64e(derived.reply_public_key)}"}}'
        ).encode(),
        "application/json",
    )
    assert created.status == 201, created.text
    upload = re.search(r'"id":\s*"([0-9a-f]+)"', created.text)
    assert upload, created.text
    offset, step = head, 100_000
    while offset < len(envelope):
        chunk = envelope[offset : offset + step]
        put = call(
            "PUT",
            f"/api/source/uploads/{upload.group(1)}?offset={offset}",
            chunk,
            "application/octet-stream",
        )
        assert put.status == 200, put.text
        offset += len(chunk)
    done = call("POST", f"/api/source/uploads/{upload.group(1)}/finish", b"", "application/json")
    assert done.status == 201, done.text
    got = stored(stack, "sealed in the browser, uploaded through nginx")
    assert got.sealed_by == "browser" and got.attachments[0].size == 300_000


@pytest.mark.parametrize(
    ("path", "csp"),
    [
        ("/", CSP_PLAIN),
        ("/submit", CSP_CRYPTO),
        ("/static/js/source/submit.js", CSP_CRYPTO),
        ("/static/css/source.css", CSP_PLAIN),
        ("/api/source/manifest", CSP_PLAIN),
        ("/no/such/page", CSP_PLAIN),
    ],
)
def test_proxied_responses_carry_the_apps_headers_once(stack: Stack, path: str, csp: str) -> None:
    expected = app_headers(stack, path)
    assert expected["Content-Security-Policy"] == csp
    reply = stack.source().request("GET", path)
    assert reply.status == (404 if path.startswith("/no/") else 200)
    assert_security_headers(reply, expected)


def test_nginx_own_responses_carry_the_same_headers(stack: Stack) -> None:
    expected = app_headers(stack, "/")  # a plain page: the strict policy
    client = stack.source()
    # A no-JS submission larger than the app accepts: refused by nginx before a byte of the
    # body, with the app's own page (the submit form again, so the crypto pages' policy).
    too_big = client.request(
        "POST",
        "/submit",
        None,
        {"Content-Length": str(2 * 1024**3 + 2 * 1024**2 + 1), "Content-Type": "text/plain"},
    )
    assert too_big.status == 413 and "larger than this tip line accepts" in too_big.text
    assert 'id="submit-form"' in too_big.text
    assert_security_headers(too_big, app_headers(stack, "/submit"))
    # One resumable-upload chunk over the app's MAX_CHUNK_SIZE: a JSON refusal.
    chunk = client.request(
        "PUT",
        "/api/source/uploads/0123?offset=0",
        None,
        {"Content-Length": str(8 * 1024**2 + 1)},
    )
    assert chunk.status == 413 and chunk.headers["Content-Type"] == "application/json"
    assert_security_headers(chunk, expected)
    # A small JSON call is bounded by the app's SMALL_BODY.
    small = client.request("POST", "/api/source/login", b"x" * (64 * 1024 + 1))
    assert small.status == 413
    assert_security_headers(small, expected)
    denied = client.request("GET", "/journalist/login")
    assert denied.status == 404 and "<title>Not found</title>" in denied.text
    assert_security_headers(denied, expected)


@pytest.mark.parametrize(
    "path",
    [
        "/journalist/login",
        "/journalist",
        "/%6Aournalist/login",
        "//admin/",
        "/static/../admin/",
        "/api/journalist/submissions",
        "/api/v1/submissions",
    ],
)
def test_source_onion_never_reaches_staff_routes(stack: Stack, path: str) -> None:
    reply = stack.source().request("GET", path)
    assert reply.status in (400, 404)
    assert "Not found" in reply.text or "nothing here" in reply.text


def test_journalist_onion_serves_only_staff_routes(stack: Stack) -> None:
    staff = stack.staff()
    root = staff.request("GET", "/")
    assert root.status == 303 and root.headers["Location"].endswith("/journalist/")
    for path in ("/submit", "/login", "/api/source/manifest"):
        assert staff.request("GET", path).status == 404, path
    assert staff.request("GET", "/static/css/source.css").status == 200
    login = staff.request("GET", "/journalist/login")
    assert login.status == 200 and "password" in login.text.lower()
    assert_security_headers(login, app_headers(stack, "/journalist/login"))
    assert 'name="csrf_token"' in login.text and staff.cookies  # a working form and session
    # The staff JSON API is reachable here (and refuses a call without a token).
    api = staff.request("GET", "/api/journalist/sources")
    assert api.status in (401, 403) and api.headers["Content-Type"].startswith("application/json")
    assert "<title>Not found</title>" not in api.text  # the app answered, not nginx


def test_upstream_down_gives_a_plain_503_and_logs_no_address(tmp_path: Path) -> None:
    """With gunicorn gone, nginx answers itself and, at the shipped error-log level, logs
    nothing; the same request with the level turned down to "info" does log the client's
    address, which shows that this check would catch a leak.
    """
    for level, leaks in (("emerg", False), ("info", True)):
        nginx = start_nginx(render_nginx(tmp_path / level, tmp_path / "nobody-here.sock", level))
        try:
            reply = source_client(nginx.source_port).request("GET", "/submit")
            api = source_client(nginx.source_port).request("GET", "/api/source/manifest")
        finally:
            nginx.stop()
        assert reply.status == 503 and "cannot take submissions" in reply.text
        assert api.status == 503 and api.headers["Content-Type"] == "application/json"
        assert reply.headers["Content-Security-Policy"] == CSP_PLAIN
        logged = b"".join(p.read_bytes() for p in nginx.logs if p.exists())
        assert (CLIENT_ADDR.encode() in logged) is leaks, logged[-500:]


def test_no_log_or_file_names_the_visitor(stack: Stack) -> None:
    """Runs last in this module: every request above, plus a few errors, then every log and
    every file the stack wrote is searched for the visitor's address and headers."""
    client = stack.source()
    client.request("GET", "/no/such/page")
    client.request("POST", "/login", b"codename=x", {"Content-Type": "x"})
    client.request("GET", "/admin/")
    client.request("GET", "/" + "a" * 9000)  # over the request-line limit: nginx's 414
    stack.staff().request("GET", "/journalist/login")
    needles = [CLIENT_ADDR, *DISTINCTIVE.values()]
    needles += [base64.b64encode(n.encode()).decode() for n in needles]
    files = [p for p in stack.base.rglob("*") if p.is_file()]
    assert stack.gunicorn_log in files and stack.nginx.logs[0].parent == stack.base / "nginx"
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle.encode() not in data, (needle, path)
    # The shipped logs are empty: nginx's site logs nothing, gunicorn nothing below warnings.
    assert (
        not (stack.nginx.prefix / "access.log").exists()
        or not (stack.nginx.prefix / "access.log").read_bytes()
    )
    assert (stack.nginx.prefix / "tipline-error.log").read_bytes() == b""
    assert b"Traceback" not in stack.gunicorn_log.read_bytes()
