"""The source pages and the no-JS path: the server seals on arrival and opens replies only
with the codename the source typed in that request.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from tipline.crypto import keys
from tipline.crypto.codename import derive, normalize
from tipline.crypto.encoding import b64e
from tipline.server import create_app, db
from tipline.server.config import ConfigError
from tipline.server.models import Source, Submission
from tipline.wordlist import load_wordlist

from .conftest import Keys, csrf_token
from .replies import add_reply, open_stored


def test_landing_shows_fingerprint(tmp_path: Path) -> None:
    org = keys.OrgSecret.generate().public
    app = create_app({"DATA_DIR": str(tmp_path), "ORG_PUBLIC_KEY": b64e(org.public_key)})
    page = app.test_client().get("/")
    assert page.status_code == 200
    assert org.fingerprint in page.text
    assert "Safest" in page.text and "Safer" in page.text and "Standard" in page.text


@pytest.mark.parametrize("value, message", [(None, "not set"), ("AAAA", "32 bytes")])
def test_org_key_is_required(tmp_path: Path, value: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_app({"DATA_DIR": str(tmp_path), "ORG_PUBLIC_KEY": value})


def test_headers(client: FlaskClient) -> None:
    landing = client.get("/")
    csp = landing.headers["Content-Security-Policy"]
    assert csp.startswith("default-src 'none'") and "script-src" not in csp
    assert "frame-ancestors 'none'" in csp
    assert landing.headers["Referrer-Policy"] == "no-referrer"
    assert landing.headers["Cache-Control"] == "no-store"
    assert landing.headers["X-Content-Type-Options"] == "nosniff"
    assert landing.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert landing.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    cookie = landing.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    crypto = client.get("/submit").headers["Content-Security-Policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; connect-src 'self'" in crypto
    assert "unsafe-inline" not in crypto
    with client.get("/static/css/source.css") as css:
        assert css.status_code == 200 and "Last-Modified" not in css.headers
        assert "script-src" not in css.headers["Content-Security-Policy"]
    # The crypto Worker runs under its own script's CSP: it must allow WebAssembly.
    with client.get("/static/js/source/common.js") as script:
        assert "'wasm-unsafe-eval'" in script.headers["Content-Security-Policy"]
        assert script.mimetype == "text/javascript"


def test_secure_cookie_over_https(app_factory: Any) -> None:
    landing = app_factory(HTTPS=True).test_client().get("/")
    assert "Secure" in landing.headers["Set-Cookie"]


def _post_form(client: FlaskClient, message: str, files: dict[str, bytes]) -> Any:
    data: dict[str, Any] = {"csrf_token": csrf_token(client), "message": message}
    data["files"] = [
        FileStorage(io.BytesIO(body), name, content_type="text/plain")
        for name, body in files.items()
    ]
    # Encoded in memory: the test client would otherwise spool a big body to a file it never
    # closes (that file is the client's, not the server's).
    boundary, body = encode_multipart(MultiDict(data))
    return client.post(
        "/submit", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )


def test_no_js_submission_is_sealed_on_arrival(app: Flask, org_keys: Keys) -> None:
    client = app.test_client()
    big = bytes(range(256)) * 4096  # 1 MiB: over Werkzeug's 500 KB spooling threshold
    page = _post_form(client, "the camp is at the old barracks", {"a.txt": b"first", "b.bin": big})
    assert page.status_code == 200, page.text
    assert "server locked it the moment it arrived" in page.text
    codename = re.search(r'id="codename">([a-z -]+)<', page.text)
    assert codename and len(codename.group(1).split()) == 7
    assert "?lang=" not in page.text  # no link may lead away from the only view of the codename
    with app.app_context():
        (submission,) = db.session().scalars(select(Submission)).all()
        source = db.session().get(Source, submission.source_id)
        assert source is not None
        derived = derive(normalize(load_wordlist(), codename.group(1)))
        assert source.token_hash == derived.token_hash
        assert source.reply_public_key == derived.reply_public_key
    inner, files = open_stored(app, org_keys.alice, submission.id)
    assert inner.sealed_by == "server" and inner.message == "the camp is at the old barracks"
    assert [a.name for a in inner.attachments] == ["a.txt", "b.bin"]
    assert files == [b"first", big]
    assert inner.reply_public_key == derived.reply_public_key
    # Nothing but ciphertext anywhere under the data folder.
    for path in Path(app.config["DATA_DIR"]).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"old barracks" not in data and big[:4096] not in data, path


def test_no_js_submission_needs_csrf(client: FlaskClient, app: Flask) -> None:
    page = client.post("/submit", data={"message": "hello"}, content_type="multipart/form-data")
    assert page.status_code == 400
    assert "Traceback" not in page.text
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Submission)) == 0


def test_empty_submission_is_refused(client: FlaskClient, app: Flask) -> None:
    page = _post_form(client, "   ", {})
    assert page.status_code == 400 and "Write a message or choose a file." in page.text
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Source)) == 0


def test_oversized_form_is_refused(app_factory: Any) -> None:
    app = app_factory(MAX_SUBMISSION_SIZE=100_000)
    client = app.test_client()
    page = _post_form(client, "x", {"big.bin": b"\0" * 3_000_000})
    assert page.status_code == 413 and "larger than this tip line accepts" in page.text
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Submission)) == 0


def test_no_manifest_means_closed(app_factory: Any) -> None:
    page = app_factory(install=False).test_client().get("/submit")
    assert page.status_code == 503


def test_low_disk_space_is_503_and_loses_nothing(app: Flask) -> None:
    client = app.test_client()
    assert _post_form(client, "first tip", {}).status_code == 200
    app.extensions["tipline.blobs"].min_free = 1 << 62
    page = _post_form(client, "second tip", {})
    assert page.status_code == 503 and "short of disk space" in page.text
    with app.app_context():
        (kept,) = db.session().scalars(select(Submission)).all()
    assert app.extensions["tipline.blobs"].path("submissions", kept.id).exists()


def _submit_and_codename(client: FlaskClient) -> str:
    page = _post_form(client, "a tip", {})
    found = re.search(r'id="codename">([a-z -]+)<', page.text)
    assert found
    return found.group(1)


def test_returning_source_reads_and_deletes_a_reply(app: Flask, org_keys: Keys) -> None:
    first = app.test_client()
    codename = _submit_and_codename(first)
    reply_id = add_reply(app, codename, org_keys.alice, "we got it, thank you")
    client = app.test_client()
    token = csrf_token(client, "/login")
    wrong = client.post("/login", data={"csrf_token": token, "codename": "not a codename"})
    assert wrong.status_code == 401 and "not known here" in wrong.text
    page = client.post("/login", data={"csrf_token": token, "codename": codename.upper()})
    assert page.status_code == 200
    shown = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
    assert "we got it, thank you" in page.text
    assert codename not in page.text  # never echoed back
    listing = client.get("/replies")
    assert "we got it, thank you" not in listing.text  # opened only in that one request
    # Logging in starts a fresh session (no fixation), so the page's new token is needed.
    stale = client.post(f"/replies/{reply_id}/delete", data={"csrf_token": token})
    assert stale.status_code == 400
    assert shown  # the page's own delete form works: its token is of the new session
    fresh = shown.group(1)
    delete = client.post(f"/replies/{reply_id}/delete", data={"csrf_token": fresh})
    assert delete.status_code == 303
    assert "No replies yet" in client.get("/replies").text
    assert not app.extensions["tipline.blobs"].path("replies", reply_id).exists()


def test_unread_reply_cannot_be_deleted(app: Flask, org_keys: Keys) -> None:
    client = app.test_client()
    codename = _submit_and_codename(client)
    reply_id = add_reply(app, codename, org_keys.alice, "unread")
    page = client.post(f"/replies/{reply_id}/delete", data={"csrf_token": csrf_token(client)})
    assert page.status_code == 409


def test_replies_page_with_codename_opens_them(app: Flask, org_keys: Keys) -> None:
    client = app.test_client()
    codename = _submit_and_codename(client)
    add_reply(app, codename, org_keys.alice, "second letter")
    token = csrf_token(client, "/replies")
    other = " ".join(["abacus"] * 7)
    refused = client.post("/replies", data={"csrf_token": token, "codename": other})
    assert refused.status_code == 401 and "second letter" not in refused.text
    page = client.post("/replies", data={"csrf_token": token, "codename": codename})
    assert "second letter" in page.text


def test_logout_forgets_the_session(app: Flask, client: FlaskClient) -> None:
    codename = _submit_and_codename(client)
    assert client.get("/replies").status_code == 200
    cookie = client.get_cookie("tipline")
    assert cookie is not None
    copied = app.test_client()  # a copy of the cookie, taken before the logout
    copied.set_cookie("tipline", cookie.value)
    assert copied.get("/replies").status_code == 200
    page = client.post("/logout", data={"csrf_token": csrf_token(client)})
    assert "close Tor Browser" in page.text
    assert client.get("/replies").status_code == 401
    assert copied.get("/replies").status_code == 401
    # The codename still works: logging in again starts a new, valid session.
    again = app.test_client()
    login = again.post(
        "/login", data={"csrf_token": csrf_token(again, "/login"), "codename": codename}
    )
    assert login.status_code == 200 and again.get("/replies").status_code == 200


def test_language_from_header_and_switch(client: FlaskClient) -> None:
    russian = client.get("/", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    assert 'lang="ru"' in russian.text and "Share a tip, safely" not in russian.text
    french = client.get("/?lang=fr")
    assert 'lang="fr"' in french.text and "Share a tip, safely" not in french.text
    assert 'lang="fr"' in client.get("/login").text  # the choice stays for the session
    assert "Français" in french.text and "Русский" in french.text and "English" in french.text


def test_errors_are_plain(client: FlaskClient) -> None:
    page = client.get("/no/such/page")
    assert page.status_code == 404 and "There is nothing here" in page.text
    assert client.get("/api/source/nothing").get_json() == {"error": "There is nothing here."}


@pytest.mark.parametrize(
    "path, kwargs",
    [
        ("/login", {"data": {"codename": "x" * 1_000_000}}),
        ("/submit", {"data": {"message": "x" * 1_000_000}}),  # URL-encoded: read whole
        ("/api/source/login", {"json": {"login_token": "x" * 100_000}}),
    ],
)
def test_bodies_are_bounded_before_parsing(client: FlaskClient, path: str, kwargs: Any) -> None:
    reply = client.post(path, headers={"X-CSRFToken": csrf_token(client)}, **kwargs)
    assert reply.status_code == 413


def test_a_crash_shows_no_trace(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_args: Any) -> None:
        raise RuntimeError("secret internals /srv/tipline")

    monkeypatch.setattr("tipline.server.source.fingerprint", boom)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    page = app.test_client().get("/")
    assert page.status_code == 500
    assert "Nothing you sent before was lost" in page.text
    assert "secret internals" not in page.text and "Traceback" not in page.text


def test_the_language_survives_log_in_submit_and_redirects(app: Flask, org_keys: Keys) -> None:
    """Tor Browser asks for English whatever the person reads: a source who chose Russian
    reads the codename page, the replies after logging in and every redirect in Russian.
    Logging out forgets the choice (it says something about a person)."""
    english = {"Accept-Language": "en-US,en;q=0.5"}
    client = app.test_client()
    assert 'lang="ru"' in client.get("/submit?lang=ru", headers=english).text
    boundary, body = encode_multipart(
        MultiDict({"csrf_token": csrf_token(client, "/submit"), "message": "привет"})
    )
    page = client.post(
        "/submit",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
        headers=english,
    )
    assert page.status_code == 200 and 'lang="ru"' in page.text
    codename = re.search(r'id="codename">([a-z -]+)<', page.text)
    assert codename
    reply_id = add_reply(app, codename.group(1), org_keys.alice, "ответ")
    assert 'lang="ru"' in client.get("/replies", headers=english).text
    other = app.test_client()
    assert 'lang="ru"' in other.get("/login?lang=ru", headers=english).text
    token = csrf_token(other, "/login")
    opened = other.post(
        "/login", data={"csrf_token": token, "codename": codename.group(1)}, headers=english
    )
    assert opened.status_code == 200 and 'lang="ru"' in opened.text and "ответ" in opened.text
    fresh = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', opened.text)
    assert fresh
    gone = other.post(
        f"/replies/{reply_id}/delete",
        data={"csrf_token": fresh.group(1)},
        headers=english,
        follow_redirects=True,
    )
    assert gone.status_code == 200 and 'lang="ru"' in gone.text
    out = other.post("/logout", data={"csrf_token": csrf_token(other, "/replies")}, headers=english)
    assert 'lang="ru"' in out.text  # the good-bye page is still in Russian
    assert 'lang="en"' in other.get("/", headers=english).text  # then the choice is gone


def test_sources_that_never_sent_anything_are_swept(app: Flask, org_keys: Keys) -> None:
    """Sources left by the old register-then-upload path go after a day; a source whose
    submissions journalists deleted stays (a reply may still come)."""
    import datetime

    from tipline.server import retention
    from tipline.server.models import new_id

    client = app.test_client()
    codename = _submit_and_codename(client)
    today = datetime.datetime.now(datetime.UTC).date()
    with app.app_context():
        session = db.session()
        kept = session.scalars(select(Source)).one()
        empty_old = Source(
            id=new_id(),
            designation="a b",
            token_hash=b"1" * 32,
            reply_public_key=b"k" * 32,
            submitted=False,
            created=today - datetime.timedelta(days=3),
        )
        empty_new = Source(
            id=new_id(),
            designation="c d",
            token_hash=b"2" * 32,
            reply_public_key=b"k" * 32,
            submitted=False,
            created=today,
        )
        session.add_all([empty_old, empty_new])
        kept.created = today - datetime.timedelta(days=30)
        for row in session.scalars(select(Submission)).all():
            session.delete(row)  # the journalists downloaded and deleted it
        session.commit()
        swept = retention.run(session, app.extensions["tipline.blobs"], today)
        left = set(session.scalars(select(Source.id)).all())
    assert swept.sources == 1
    assert left == {kept.id, empty_new.id}
    assert derive(normalize(load_wordlist(), codename)).token_hash == kept.token_hash


def _big_form(client: FlaskClient, message: str, size: int) -> tuple[bytes, str]:
    boundary, body = encode_multipart(
        MultiDict(
            {
                "csrf_token": csrf_token(client, "/submit"),
                "message": message,
                "files": FileStorage(io.BytesIO(b"\0" * size), "big.bin"),
            }
        )
    )
    return body, f"multipart/form-data; boundary={boundary}"


def test_a_form_over_the_admins_limit_is_refused_before_its_body_is_read(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the head of the body is read (the message comes before the files), the typed
    message is given back in the form, and the form parser never runs."""
    from dataclasses import replace

    from tipline.server import settings

    with app.app_context():
        current = settings.load(db.session())
        settings.save(db.session(), replace(current, max_submission_size=100_000))
    client = app.test_client()
    body, content_type = _big_form(client, "keep <this> message", 4 << 20)
    read: list[int] = []

    class Counting(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            piece = super().read(size)
            read.append(len(piece))
            return piece

    monkeypatch.setattr(
        "tipline.server.source.collect_parts",
        lambda *_a: pytest.fail("the form was parsed"),
    )
    page = client.post(
        "/submit",
        input_stream=Counting(body),
        content_type=content_type,
        headers={"Content-Length": str(len(body))},
    )
    assert page.status_code == 413
    assert page.headers["Connection"] == "close"
    assert "Your message is still below" in page.text and "100" in page.text
    assert "keep &lt;this&gt; message</textarea>" in page.text  # given back, escaped
    assert sum(read) <= (1 << 20) + 64 * 1024 < len(body)
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Submission)) == 0


def test_the_proxys_413_is_the_apps_page(client: FlaskClient) -> None:
    page = client.get("/submit/too-large", headers={"Accept-Language": "ru"})
    assert page.status_code == 413 and 'lang="ru"' in page.text
    assert 'id="page-error"' in page.text


def test_without_js_a_reply_attachment_is_streamed_to_its_source(
    app: Flask, org_keys: Keys
) -> None:
    """The server opens the reply with the codename typed in that request, checks the whole
    envelope first, and streams the attachment; a wrong codename gets nothing."""
    client = app.test_client()
    codename = _submit_and_codename(client)
    data = bytes(range(256)) * 3000
    reply_id = add_reply(
        app, codename, org_keys.alice, "see the file", {"../../etc/пароль.pdf": data}
    )
    page = client.post(
        "/replies", data={"csrf_token": csrf_token(client, "/replies"), "codename": codename}
    )
    assert "see the file" in page.text and 'form="download-form"' in page.text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
    assert token
    wrong = client.post(
        "/replies/download",
        data={"csrf_token": token.group(1), "codename": "abacus " * 7, "file": f"{reply_id}/0"},
    )
    assert wrong.status_code == 401 and data[:64] not in wrong.data
    got = client.post(
        "/replies/download",
        data={"csrf_token": token.group(1), "codename": codename, "file": f"{reply_id}/0"},
    )
    assert got.status_code == 200 and got.data == data
    assert got.headers["Content-Type"] == "application/octet-stream"
    assert got.headers["Content-Length"] == str(len(data))
    disposition = got.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "/" not in disposition.split("filename*")[0]
    assert "filename*=UTF-8''..%2F..%2Fetc%2F" not in disposition  # no path survives
    missing = client.post(
        "/replies/download",
        data={"csrf_token": token.group(1), "codename": codename, "file": f"{reply_id}/1"},
    )
    assert missing.status_code == 404


def test_a_damaged_reply_streams_nothing(app: Flask, org_keys: Keys) -> None:
    client = app.test_client()
    codename = _submit_and_codename(client)
    reply_id = add_reply(app, codename, org_keys.alice, "x", {"a.bin": b"A" * 200_000})
    path = app.extensions["tipline.blobs"].path("replies", reply_id)
    damaged = bytearray(path.read_bytes())
    damaged[-5] ^= 1  # the last chunk: a streaming reader would have handed out the rest
    path.write_bytes(bytes(damaged))
    got = client.post(
        "/replies/download",
        data={
            "csrf_token": csrf_token(client, "/replies"),
            "codename": codename,
            "file": f"{reply_id}/0",
        },
    )
    assert got.status_code == 404 and b"AAAA" not in got.data


def test_sizes_are_shown_in_plain_units(app: Flask) -> None:
    from tipline.server.source import human_size

    with app.test_request_context("/?lang=fr"):
        from flask_babel import refresh

        refresh()
        assert human_size(2_147_483_648).replace("\u00a0", " ") in ("2,1 Go", "2.1 Go")
    with app.test_request_context("/"):
        assert human_size(999).replace("\u00a0", " ") == "999 bytes"
        assert human_size(1_500_000).replace("\u00a0", " ") == "1.5 MB"


def test_every_page_has_an_icon(client: FlaskClient) -> None:
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.data[:4] == b"\0\0\1\0"
    icon.close()
