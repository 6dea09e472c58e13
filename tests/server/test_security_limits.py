"""Request-body limits (security.py: ``_limit_body``, ``_read_small_chunked``,
``_refuse_oversize_early``, ``_check_csrf_early``), each at its bound and one byte past it, with
the status and the message a refused client sees and nothing spooled or stored when refused.
Written against the survivors of ``make mutation-paths SETS=server``
(tests/mutation/survivors.md); the fuller behaviour is in test_bodies, test_api, test_source,
test_journalist and test_admin.
"""

from __future__ import annotations

import base64
import io
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from tipline.server import spooled
from tipline.server.security import (
    CSRF_HEAD,
    FORM_OVERHEAD,
    SMALL_BODY,
    SMALL_READ,
    _relative_location,
)

from .conftest import Keys, csrf_token, make_staff, page_token, staff_login, staff_token
from .test_bodies import Counting, _admin_limit

TOO_LARGE = "That is larger than this tip line accepts. Nothing was stored."
FORM_EXPIRED = "The form expired. Please send it again."
PAGE_EXPIRED = "The page expired. Reload it and try again. Nothing was stored."
BUSY = "Too many attempts just now. Wait a minute, then try again."


def _as_a_server_gives_it(app: Flask) -> None:
    """A chunked body comes without CONTENT_LENGTH from a WSGI server (the test client sets
    one from its input stream)."""
    inner = app.wsgi_app
    if getattr(inner, "server_like", False):
        return

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", ""):
            environ.pop("CONTENT_LENGTH", None)
        return inner(environ, start_response)

    wsgi.server_like = True  # type: ignore[attr-defined]
    app.wsgi_app = wsgi  # type: ignore[method-assign]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the body limits are checked before the database is reached."""
    return f"sqlite:///{tmp_path / 'tipline.db'}"


@pytest.fixture
def spool_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of every write into the no-JS sealing spool."""
    writes: list[int] = []
    real_write = spooled.SpoolFile.write
    monkeypatch.setattr(
        spooled.SpoolFile,
        "write",
        lambda self, data: writes.append(len(data)) or real_write(self, data),
    )
    return writes


def _multipart(fields: dict[str, Any], size: int | None = None) -> tuple[str, bytes]:
    """A multipart body of ``fields`` (a bytes value is a file); with ``size``, the last file
    is padded so that the whole body is exactly ``size`` bytes."""

    def encode(pad: int) -> tuple[str, bytes]:
        data = MultiDict(
            {
                k: FileStorage(io.BytesIO(v + b"p" * pad), "doc.bin") if isinstance(v, bytes) else v
                for k, v in fields.items()
            }
        )
        boundary, body = encode_multipart(data, boundary="x" * 30)
        return f"multipart/form-data; boundary={boundary}", body

    if size is None:
        return encode(0)
    ctype, body = encode(size - len(encode(1)[1]) + 1)
    assert len(body) == size
    return ctype, body


def _send(
    client: FlaskClient,
    path: str,
    ctype: str,
    body: bytes,
    *,
    chunked: bool = False,
    terminated: bool = True,
    extra: bytes = b"",
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> tuple[Any, int]:
    """Send ``body`` (followed on the wire by ``extra``, e.g. the next request on the
    connection); returns the response and how many bytes the server read."""
    stream = Counting(body + extra)
    sent = dict(headers or {})
    environ: dict[str, Any] = {"CONTENT_LENGTH": str(len(body))}
    if chunked:
        _as_a_server_gives_it(client.application)
        sent["Transfer-Encoding"] = "chunked"
        # As gunicorn and werkzeug's server say of a chunked body they decode.
        environ = {"wsgi.input_terminated": True} if terminated else {}
    response = client.open(
        path,
        method=method,
        input_stream=stream,
        content_type=ctype,
        headers=sent,
        environ_overrides=environ,
    )
    return response, stream.read_bytes


# --- the no-JS submission: the early 413 and the admin's limit --------------------------------


def test_a_submission_declared_one_byte_over_the_limit_is_refused_unread(
    app: Flask, spool_writes: list[int]
) -> None:
    """At exactly the admin's limit plus the form's overhead the body is let through to the
    CSRF check (a forged token: the 'form expired' page after at most 4 KiB); one byte more is
    the 413 page with the typed message given back, and neither is spooled. Control: an honest
    post afterwards is."""
    client = app.test_client()
    csrf_token(client, "/submit")
    _admin_limit(app, 100_000)
    bound = 100_000 + FORM_OVERHEAD
    fields = {"csrf_token": "forged", "message": "the mayor's ledger", "files": b""}

    ctype, body = _multipart(fields, bound)
    response, read = _send(client, "/submit", ctype, body)
    assert response.status_code == 400 and FORM_EXPIRED in response.text
    assert read <= CSRF_HEAD

    ctype, body = _multipart(fields, bound + 1)
    response, read = _send(client, "/submit", ctype, body)
    assert response.status_code == 413
    assert "Your files are larger than this tip line accepts (100\u00a0KB in all)" in response.text
    assert "Your message is still below" in response.text
    assert "the mayor&#39;s ledger" in response.text
    assert response.headers["Connection"] == "close"
    assert read < len(body) // 2
    assert spool_writes == []

    # Control: the spy sees what is spooled.
    ctype, body = _multipart(
        {"csrf_token": csrf_token(client, "/submit"), "message": "a tip", "files": bytes(50_000)}
    )
    assert _send(client, "/submit", ctype, body)[0].status_code == 200
    assert sum(spool_writes) == 50_000


def test_a_submission_under_the_admins_limit_is_stored(app: Flask, spool_writes: list[int]) -> None:
    """The body limit is the admin's size plus the overhead (not minus it): a 60 kB file under
    a 100 kB limit is stored."""
    client = app.test_client()
    _admin_limit(app, 100_000)
    ctype, body = _multipart(
        {"csrf_token": csrf_token(client, "/submit"), "message": "a tip", "files": bytes(60_000)}
    )
    response, read = _send(client, "/submit", ctype, body)
    assert response.status_code == 200, response.text[:300]
    assert read == len(body) and sum(spool_writes) == 60_000


def test_only_a_posted_submission_is_refused_early(app: Flask) -> None:
    """A body over the submission limit elsewhere gets the ordinary 413 (the login form), and
    a GET of the form with a body declared too large is just the form."""
    client = app.test_client()
    _admin_limit(app, 100_000)
    big = 100_000 + FORM_OVERHEAD + 1
    body = b"codename=x&pad=" + b"x" * (big - 15)
    response, _ = _send(client, "/login", "application/x-www-form-urlencoded", body)
    assert response.status_code == 413 and TOO_LARGE in response.text
    assert "so nothing was sent" not in response.text

    response, read = _send(client, "/submit", "text/plain", b"x" * big, method="GET")
    assert response.status_code == 200 and "so nothing was sent" not in response.text
    assert read == 0


# --- the CSRF and capacity checks on the first 4 KiB ------------------------------------------


def test_a_token_in_the_header_is_enough(app: Flask, spool_writes: list[int]) -> None:
    """A multipart submission whose token is in the X-CSRFToken header and not in the body is
    stored; control: the same body without the header is refused unspooled."""
    client = app.test_client()
    token = csrf_token(client, "/submit")
    ctype, body = _multipart({"message": "by header", "files": bytes(5000)})
    response, read = _send(client, "/submit", ctype, body)
    assert response.status_code == 400 and FORM_EXPIRED in response.text
    assert spool_writes == [] and read <= CSRF_HEAD
    response, read = _send(client, "/submit", ctype, body, headers={"X-CSRFToken": token})
    assert response.status_code == 200, response.text[:300]
    assert read == len(body) and sum(spool_writes) == 5000


def test_a_forged_header_token_is_refused_before_the_form_is_read(app: Flask) -> None:
    """A URL-encoded post with a forged X-CSRFToken gets the no-JS form's refusal (and the
    connection closed), not CSRFProtect's after the form was read."""
    client = app.test_client()
    csrf_token(client, "/submit")
    body = b"message=hello"
    response, read = _send(
        client,
        "/submit",
        "application/x-www-form-urlencoded",
        body,
        headers={"X-CSRFToken": "forged"},
    )
    assert response.status_code == 400 and FORM_EXPIRED in response.text
    assert response.headers["Connection"] == "close" and read == 0


def test_a_multipart_post_without_a_boundary_is_refused_unread(app: Flask) -> None:
    client = app.test_client()
    csrf_token(client, "/submit")
    response, read = _send(client, "/submit", "multipart/form-data", b"x" * 10_000)
    assert response.status_code == 400 and FORM_EXPIRED in response.text
    assert PAGE_EXPIRED not in response.text and read == 0


def test_the_head_is_read_no_further_than_the_body(app: Flask) -> None:
    """A body shorter than 4 KiB is read to its declared end and not a byte past it (the
    next request on a kept-alive connection is not taken into this one)."""
    client = app.test_client()
    ctype, body = _multipart(
        {"csrf_token": csrf_token(client, "/submit"), "message": "short", "files": b"tip"}
    )
    assert len(body) < CSRF_HEAD
    response, read = _send(client, "/submit", ctype, body, extra=b"GET / HTTP/1.1\r\n" * 400)
    assert response.status_code == 200, response.text[:300]
    assert read == len(body)


@pytest.fixture
def busy_app(app_factory: Any) -> Flask:
    """A tip line that takes one submission an hour."""
    app: Flask = app_factory(RATELIMIT_ENABLED=True, RATELIMIT_SUBMIT="1 per hour")
    return app


def test_at_capacity_a_submission_is_refused_before_its_body_is_read(
    busy_app: Flask, spool_writes: list[int]
) -> None:
    """The first submission is stored; the second, at capacity, is a 429 with the plain
    message and the connection closed, with nothing read or spooled. The form page and the
    login stay reachable."""
    client = busy_app.test_client()
    token = csrf_token(client, "/submit")
    ctype, body = _multipart({"csrf_token": token, "message": "first", "files": bytes(50_000)})
    response, _ = _send(client, "/submit", ctype, body)
    assert response.status_code == 200 and sum(spool_writes) == 50_000
    spool_writes.clear()

    other = busy_app.test_client()
    ctype, body = _multipart(
        {"csrf_token": csrf_token(other, "/submit"), "message": "second", "files": bytes(50_000)}
    )
    response, read = _send(other, "/submit", ctype, body)
    assert response.status_code == 429 and BUSY in response.text
    assert response.headers["Connection"] == "close"
    assert read == 0 and spool_writes == []
    assert other.get("/submit").status_code == 200
    login = other.post("/login", data={"codename": "x", "csrf_token": csrf_token(other, "/login")})
    assert login.status_code == 401


# --- small bodies: 64 KiB, and chunked ones read ahead ----------------------------------------


def _login_form(client: FlaskClient, size: int) -> bytes:
    head = f"csrf_token={csrf_token(client, '/login')}&codename=x&pad=".encode()
    return head + b"x" * (size - len(head))


@pytest.mark.parametrize("chunked", [False, True])
def test_a_small_form_at_64_kib_is_read_and_one_byte_more_refused(
    app: Flask, chunked: bool
) -> None:
    """Exactly SMALL_BODY bytes is a whole form (a wrong codename: 401); one more is the 413
    with its plain message, and a chunked body is read no further than the limit plus one."""
    client = app.test_client()
    ctype = "application/x-www-form-urlencoded"
    response, read = _send(
        client, "/login", ctype, _login_form(client, SMALL_BODY), chunked=chunked
    )
    assert response.status_code == 401, response.text[:300]
    for size in (SMALL_BODY + 1, 4 * SMALL_BODY):
        response, read = _send(client, "/login", ctype, _login_form(client, size), chunked=chunked)
        assert response.status_code == 413 and TOO_LARGE in response.text
        if chunked:
            assert read == SMALL_BODY + 1


def test_a_chunked_small_body_is_an_ordinary_body_once_read(app: Flask) -> None:
    """Read ahead, a chunked body has a Content-Length and no Transfer-Encoding, so it is
    parsed whole even where the server does not mark the input as terminated."""
    client = app.test_client()
    body = _login_form(client, 1000)
    response, read = _send(
        client, "/login", "application/x-www-form-urlencoded", body, chunked=True, terminated=False
    )
    assert response.status_code == 401, response.text[:300]
    assert read == len(body)


def test_a_multipart_login_gets_the_small_limit(app: Flask) -> None:
    """Multipart is the large limit only for the submission form."""
    client = app.test_client()
    fields = {"csrf_token": csrf_token(client, "/login"), "codename": "x", "pad": b""}
    ctype, body = _multipart(fields, SMALL_BODY)
    assert _send(client, "/login", ctype, body)[0].status_code == 401
    ctype, body = _multipart(fields, SMALL_BODY + 1)
    response, _ = _send(client, "/login", ctype, body)
    assert response.status_code == 413 and TOO_LARGE in response.text


# --- upload chunks ----------------------------------------------------------------------------


@pytest.fixture
def upload(app_factory: Any, org_keys: Keys) -> Iterator[tuple[Any, str, int]]:
    """A browser with an upload started, chunks of up to SMALL_READ (1 MiB) bytes."""
    from .test_api import Browser, _envelope

    app = app_factory(MAX_CHUNK_SIZE=SMALL_READ)
    browser = Browser(app.test_client(), org_keys.alice.public.public_key)
    browser.register()
    envelope = _envelope(org_keys, browser, **{"a.bin": secrets.token_bytes(3 * SMALL_READ)})
    created = browser.create(envelope)
    assert created.status_code == 201, created.text
    yield browser, created.json["id"], created.json["received"]


def _received(browser: Any, upload_id: str) -> int:
    received: int = browser.call("GET", f"/api/source/uploads/{upload_id}").json["received"]
    return received


def test_a_chunk_of_exactly_the_chunk_size_is_taken(upload: tuple[Any, str, int]) -> None:
    browser, upload_id, offset = upload
    response = browser.put(upload_id, offset, bytes(SMALL_READ))
    assert response.status_code == 200 and response.json["received"] == offset + SMALL_READ
    over = browser.put(upload_id, offset + SMALL_READ, bytes(SMALL_READ + 1))
    assert over.status_code == 413 and over.json["error"] == TOO_LARGE
    assert _received(browser, upload_id) == offset + SMALL_READ


def test_a_chunked_chunk_over_the_chunk_size_is_refused(upload: tuple[Any, str, int]) -> None:
    """A chunk sent without Content-Length is read ahead when the chunk size is at most
    SMALL_READ: one byte over is the 413, and nothing of it is kept."""
    browser, upload_id, offset = upload
    response, read = _send(
        browser.client,
        f"/api/source/uploads/{upload_id}?offset={offset}",
        "application/octet-stream",
        bytes(SMALL_READ + 1),
        method="PUT",
        chunked=True,
        headers={"X-CSRFToken": browser.token},
    )
    assert response.status_code == 413 and response.json["error"] == TOO_LARGE
    assert read == SMALL_READ + 1
    assert _received(browser, upload_id) == offset


# --- reply bundles and manifests --------------------------------------------------------------


REPLY_BUNDLE = 100_000


@pytest.fixture
def bundle_app(app_factory: Any) -> Flask:
    app: Flask = app_factory(MAX_REPLY_BUNDLE=REPLY_BUNDLE)
    return app


def test_a_reply_bundle_may_be_its_limit_plus_a_mib(bundle_app: Flask) -> None:
    """Through the API, a body of MAX_REPLY_BUNDLE + 1 MiB reaches the bundle reader (this one
    is not a bundle: a 400 saying why); one byte more is the 413 before it is read."""
    headers = {
        "Authorization": f"Bearer {staff_token(bundle_app, 'scripter')}",
        "Content-Type": "application/octet-stream",
    }
    client = bundle_app.test_client()
    bound = REPLY_BUNDLE + (1 << 20)
    response = client.post("/api/journalist/replies", data=bytes(bound), headers=headers)
    assert response.status_code == 400
    assert response.json["error"] == "this bundle cannot be read: this is not a Tipline bundle"
    response = client.post("/api/journalist/replies", data=bytes(bound + 1), headers=headers)
    assert response.status_code == 413 and response.json["error"] == TOO_LARGE


def test_a_reply_bundle_form_takes_more_than_a_small_body(bundle_app: Flask) -> None:
    client = bundle_app.test_client()
    staff_login(bundle_app, client, make_staff(bundle_app, "writer"))
    token = page_token(client.get("/journalist/replies").text)
    ctype, body = _multipart({"csrf_token": token, "bundle": bytes(2 * SMALL_BODY)})
    response, _ = _send(client, "/journalist/replies", ctype, body)
    assert "The reply bundle was refused, nothing was stored" in response.text
    assert response.status_code == 400


MANIFEST_BODY = 512 * 1024


@pytest.fixture
def admin_client(app: Flask) -> FlaskClient:
    client = app.test_client()
    staff_login(app, client, make_staff(app, "boss", admin=True))
    return client


def test_a_manifest_upload_may_be_512_kib(admin_client: FlaskClient) -> None:
    """Exactly 512 KiB of body reaches the form (a file too large for a manifest: the admin
    page says so); one byte more is the 413."""
    token = page_token(admin_client.get("/admin/").text)
    fields = {"csrf_token": token, "manifest": b""}
    ctype, body = _multipart(fields, MANIFEST_BODY)
    response, _ = _send(admin_client, "/admin/manifest", ctype, body)
    assert response.status_code == 400
    assert "the file is larger than a signed manifest can be" in response.text
    ctype, body = _multipart(fields, MANIFEST_BODY + 1)
    response, _ = _send(admin_client, "/admin/manifest", ctype, body)
    assert response.status_code == 413 and TOO_LARGE in response.text


def test_a_manifest_confirmation_takes_more_than_a_small_body(admin_client: FlaskClient) -> None:
    token = page_token(admin_client.get("/admin/").text)
    junk = base64.b64encode(secrets.token_bytes(2 * SMALL_BODY)).decode()
    response = admin_client.post(
        "/admin/manifest/confirm", data={"csrf_token": token, "manifest": junk}
    )
    assert response.status_code == 400 and "Nothing was installed." in response.text


# --- redirects --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "relative"),
    [
        ("http://forged.example/admin/", "/admin/"),
        ("//forged.example/x?a=1#f", "/x?a=1#f"),
        ("https://forged.example", "/"),
        ("https://forged.example?next=1", "/?next=1"),
        ("/already/relative", "/already/relative"),
    ],
)
def test_a_redirect_never_names_another_host(location: str, relative: str) -> None:
    response = Response(status=302, headers={"Location": location})
    _relative_location(response)
    assert response.headers["Location"] == relative


def test_a_manifest_file_over_the_manifest_limit_is_called_too_large(
    admin_client: FlaskClient,
) -> None:
    """The upload is read to 96 KiB + 1 across the spool's 64 KiB chunks (a file of 70 KiB was
    cut at 64 KiB and refused as broken JSON; one over 96 KiB the same, not as too large).
    Control: a file of exactly 96 KiB is read whole and refused for what it is."""
    from tipline.crypto.manifest import MAX_SIGNED_MANIFEST

    token = page_token(admin_client.get("/admin/").text)
    for size, reason in (
        (MAX_SIGNED_MANIFEST + 1, "the file is larger than a signed manifest can be"),
        (MAX_SIGNED_MANIFEST, "signed manifest is not valid JSON"),
    ):
        ctype, body = _multipart({"csrf_token": token, "manifest": b"{" * size})
        response, _ = _send(admin_client, "/admin/manifest", ctype, body)
        assert response.status_code == 400 and reason in response.text, size
