"""The whole round trip across the air gap, through each side's own commands and routes.

The desk makes the org key, a journalist key and the signed manifest; the server is set up with
its own CLI from those files; a source submits through the plain form; the journalist exports a
bundle through the token API; the desk imports and reads it and writes a reply bundle; the server
takes the reply bundle; the source logs in with the codename and reads the reply. Each side only
ever sees the other's files, as on a USB stick, so the formats in docs/SPEC.md must agree.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import pyotp
import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from tipline.crypto import keys
from tipline.crypto.encoding import b64e
from tipline.desk.cli import cli as desk
from tipline.server import accounts, create_app, db
from tipline.server.cli import cli as server
from tipline.server.models import Source

from .desk.safe import samples

PASS = "an air-gapped passphrase"
MESSAGE = "End-to-end marker: the mayor's second ledger is in the basement safe"
FILE = b"Attachment-Marker " * 5000


def desk_run(vault: Path, *args: str, stdin: str = PASS + "\n") -> str:
    result = CliRunner().invoke(desk, ["--vault", str(vault), *args], input=stdin)
    assert result.exit_code == 0, (args, result.output, result.stderr)
    return result.stdout


def server_run(*args: str) -> str:
    result = CliRunner().invoke(server, list(args))
    assert result.exit_code == 0, (args, result.output, result.stderr)
    return result.stdout


def token_of(client: FlaskClient, path: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def test_submission_to_desk_and_reply_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vault = tmp_path / "vault"
    desk_run(vault, "init", "--role", "both", "--kdf", "interactive", stdin=f"{PASS}\n{PASS}\n")
    desk_run(vault, "keys", "org-create")
    desk_run(vault, "keys", "add", "Alice Reporter")
    desk_run(vault, "keys", "org-export", "--out", str(tmp_path / "org.json"))
    desk_run(vault, "manifest", "--out", str(tmp_path / "manifest.json"))

    org = keys.load_key_file((tmp_path / "org.json").read_bytes())
    assert isinstance(org, keys.OrgPublic)
    monkeypatch.setenv("TIPLINE_DATA_DIR", str(tmp_path / "server"))
    monkeypatch.setenv("TIPLINE_ORG_PUBLIC_KEY", b64e(org.public_key))
    monkeypatch.setenv("TIPLINE_RATELIMIT_ENABLED", "false")
    monkeypatch.setenv("TIPLINE_MIN_FREE_BYTES", "0")
    server_run("db", "upgrade")
    server_run("install-manifest", "--yes", str(tmp_path / "manifest.json"))
    server_run("add-journalist", "alice")
    app = create_app()

    # The source, without JavaScript: the server seals on arrival.
    source = app.test_client()
    hostile_pdf, gps_jpeg = samples.hostile_pdf(), samples.gps_jpeg()
    form = MultiDict(
        [
            ("csrf_token", token_of(source, "/submit")),
            ("message", MESSAGE),
            ("files", FileStorage(io.BytesIO(FILE), "ledger.txt", content_type="text/plain")),
            (
                "files",
                FileStorage(io.BytesIO(hostile_pdf), "minutes.pdf", content_type="application/pdf"),
            ),
            ("files", FileStorage(io.BytesIO(gps_jpeg), "IMG_2041.jpg", content_type="image/jpeg")),
        ]
    )
    boundary, body = encode_multipart(form)
    page = source.post(
        "/submit", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert page.status_code == 200
    found = re.search(r'id="codename">([a-z -]+)<', page.text)
    assert found
    codename = found.group(1)

    # The journalist exports everything new with an API token.
    with app.app_context():
        alice = accounts.by_username(db.session(), "alice")
        assert alice is not None
        secret = accounts.begin_enrolment(db.session(), alice)
        assert accounts.finish_enrolment(db.session(), alice, pyotp.TOTP(secret).now())
        token = accounts.new_token(db.session(), alice, "transfer script")
    bearer = {"Authorization": f"Bearer {token}"}
    staff = app.test_client()
    exported = staff.post("/api/journalist/export", json={"new": True}, headers=bearer)
    assert exported.status_code == 200, exported.text
    (tmp_path / "export.bundle").write_bytes(exported.data)
    assert MESSAGE.encode() not in exported.data and b"Attachment-Marker" not in exported.data

    # On the desk: import (twice: the second adds nothing), read, reply.
    assert "imported 1 new, 0 already" in desk_run(vault, "import", str(tmp_path / "export.bundle"))
    assert "imported 0 new, 1 already" in desk_run(vault, "import", str(tmp_path / "export.bundle"))
    listing = desk_run(vault, "list")
    item_id = re.search(r"^\s+([0-9a-f]{12})\s", listing, re.MULTILINE)
    assert item_id, listing
    shown = desk_run(vault, "show", item_id.group(1))
    assert MESSAGE in shown and "ledger.txt" in shown
    assert f"sha256 {hashlib.sha256(hostile_pdf).hexdigest()}" in shown

    # Safe copies of the hostile PDF and the GPS-tagged photo: clean by the checks that find
    # the hostile parts in the originals (tests/desk/safe/samples.py).
    assert samples.pdf_hostile_parts(hostile_pdf) and "GPSLatitude" in samples.exif_fields(gps_jpeg)
    copies = tmp_path / "copies"
    copies.mkdir()
    exported_copies = desk_run(vault, "export", item_id.group(1), "--to", str(copies))
    (pdf_copy,) = copies.glob("*-02-minutes.viewing.pdf")
    assert samples.pdf_hostile_parts(pdf_copy) == set() and samples.pdf_fonts(pdf_copy) == []
    (photo,) = copies.glob("*-03-IMG_2041.viewing.png")
    assert samples.png_chunks(photo.read_bytes()) == [b"IHDR", b"IDAT", b"IEND"]
    assert (copies / f"{pdf_copy.name}.provenance.json").is_file()
    assert hashlib.sha256(gps_jpeg).hexdigest() in exported_copies
    desk_run(
        vault, "export", item_id.group(1), "--to", str(copies), "--publication", "--attachment", "3"
    )
    (published,) = copies.glob("*-03-IMG_2041.publication.jpg")
    assert not [k for k in samples.exif_fields(published.read_bytes()) if k.startswith("GPS")]
    with app.app_context():
        (designation,) = db.session().scalars(select(Source.designation)).all()
    desk_run(
        vault,
        "reply",
        designation,
        "-m",
        "Reply-Marker: we will call you",
        "--out",
        str(tmp_path / "reply.bundle"),
    )

    # The server takes the reply bundle; the same bundle again adds nothing.
    reply_bundle = (tmp_path / "reply.bundle").read_bytes()
    headers = {**bearer, "Content-Type": "application/octet-stream"}
    taken = staff.post("/api/journalist/replies", data=reply_bundle, headers=headers)
    assert taken.status_code == 201 and taken.json == {"added": 1, "already": 0}
    again = staff.post("/api/journalist/replies", data=reply_bundle, headers=headers)
    assert again.json == {"added": 0, "already": 1}

    # The source comes back with the codename and reads it (opened on the server, no JS).
    back = app.test_client()
    read = back.post("/login", data={"csrf_token": token_of(back, "/login"), "codename": codename})
    assert read.status_code == 200
    assert "Reply-Marker: we will call you" in read.text
    assert json.dumps(codename) not in read.text and codename not in read.text
