"""Three desks of their own and one server (docs/DESK.md §1): a signing desk with the org key,
and one journalist desk each for Alice and Bob. Each journalist enrols by key request; a tip is
sealed to both and each opens it on their own desk; Bob's vault holds no org secret key and no
key of Alice's (read from the vault itself); Bob rotates by request; the server names the new
key, and lists the tip still sealed only to Bob's retired key.

Every step goes through each side's own commands and routes, and the desks only ever see each
other's files, as on a USB stick.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from tipline.crypto import keys
from tipline.crypto.encoding import b64e
from tipline.desk.cli import cli as desk
from tipline.desk.vault import Vault
from tipline.server import accounts, create_app, db
from tipline.server.cli import cli as server

from .server.conftest import make_staff, staff_login

PASS = "an air-gapped passphrase"


def run(vault: Path, *args: str, stdin: str = PASS + "\n", code: int = 0) -> Result:
    result = CliRunner().invoke(desk, ["--vault", str(vault), *args], input=stdin)
    assert result.exit_code == code, (args, result.output, result.stderr)
    return result


def server_run(*args: str) -> str:
    result = CliRunner().invoke(server, list(args))
    assert result.exit_code == 0, (args, result.output, result.stderr)
    return result.stderr


def init(vault: Path, role: str) -> None:
    run(vault, "init", "--role", role, "--kdf", "interactive", stdin=f"{PASS}\n{PASS}\n")


def submit(app: Flask, message: str) -> None:
    """A source without JavaScript: the server seals on arrival to the manifest in force."""
    source = app.test_client()
    page = source.get("/submit")
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert found
    form = MultiDict(
        [
            ("csrf_token", found.group(1)),
            ("message", message),
            ("files", FileStorage(io.BytesIO(b""), "", content_type="text/plain")),
        ]
    )
    boundary, body = encode_multipart(form)
    sent = source.post(
        "/submit", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert sent.status_code == 200 and 'id="codename"' in sent.text, sent.text[:2000]


def export(app: Flask, token: str, out: Path) -> Path:
    got = app.test_client().post(
        "/api/journalist/export", json={"new": True}, headers={"Authorization": f"Bearer {token}"}
    )
    assert got.status_code == 200, got.text
    out.write_bytes(got.data)
    return out


def api_token(app: Flask, username: str) -> str:
    with app.app_context():
        account = accounts.by_username(db.session(), username)
        assert account is not None
        account.totp_secret = "A" * 32
        db.session().commit()
        return accounts.new_token(db.session(), account, "usb")


def opened_messages(vault: Path) -> str:
    listing = run(vault, "list").stdout
    shown = ""
    for item in re.findall(r"^\s+([0-9a-f]{12})\s", listing, re.MULTILINE):
        shown += run(vault, "show", item).stdout
    return shown


def test_signing_desk_and_two_journalist_desks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    signer, alice, bob = tmp_path / "signer", tmp_path / "alice", tmp_path / "bob"
    usb = tmp_path / "usb"
    usb.mkdir()
    init(signer, "signer")
    run(signer, "keys", "org-create")
    run(signer, "keys", "org-export", "--out", str(usb / "org.json"))
    for vault, who, label in ((alice, "alice", "Alice Reporter"), (bob, "bob", "Bob Editor")):
        init(vault, "journalist")
        assert "fingerprint" in run(vault, "keys", "org-import", str(usb / "org.json")).stdout
        out = str(usb / f"{who}.request")
        run(vault, "keys", "request", "--account", who, "--label", label, "--out", out)
        assert "secret" not in (usb / f"{who}.request").read_text()

    # A journalist desk cannot sign, nor make an org key: it has none.
    refused = run(bob, "manifest", "--out", str(usb / "forged.json"), code=1)
    assert refused.stderr.startswith("tipline-desk: ") and "journalist desk" in refused.stderr
    assert refused.stderr.count("\n") == 1 and not (usb / "forged.json").exists()
    assert "journalist desk" in run(bob, "keys", "org-create", code=1).stderr

    # The signer accepts Bob first (after a look and a yes), signs, and the server installs it.
    shown = run(signer, "keys", "accept", str(usb / "bob.request"), stdin=f"{PASS}\ny\n")
    assert "account     bob" in shown.stdout and "Bob Editor" in shown.stdout
    run(signer, "manifest", "--out", str(usb / "m1.json"))
    org = keys.load_key_file((usb / "org.json").read_bytes())
    assert isinstance(org, keys.OrgPublic)
    monkeypatch.setenv("TIPLINE_DATA_DIR", str(tmp_path / "server"))
    monkeypatch.setenv("TIPLINE_ORG_PUBLIC_KEY", b64e(org.public_key))
    monkeypatch.setenv("TIPLINE_RATELIMIT_ENABLED", "false")
    monkeypatch.setenv("TIPLINE_MIN_FREE_BYTES", "0")
    server_run("db", "upgrade")
    server_run("add-journalist", "alice")
    server_run("add-journalist", "bob")
    summary = server_run("install-manifest", "--yes", str(usb / "m1.json"))
    assert re.search(r"added\s+[0-9a-f]{8}\s+bob\s+Bob Editor", summary), summary
    app = create_app()
    submit(app, "Tip-One: only Bob's first key was enrolled then")

    # Alice enrols; the next manifest has both; a tip is sealed to both.
    run(signer, "keys", "accept", str(usb / "alice.request"), "--yes")
    run(signer, "manifest", "--out", str(usb / "m2.json"))
    server_run("install-manifest", "--yes", str(usb / "m2.json"))
    submit(app, "Tip-Two: sealed to Alice and Bob")
    bundle = export(app, api_token(app, "bob"), usb / "export.bundle")

    # Each opens Tip-Two on their own desk; only Bob can open Tip-One.
    run(alice, "import", str(bundle), code=1)  # Tip-One is not sealed to Alice: reported
    run(bob, "import", str(bundle))
    alice_read, bob_read = opened_messages(alice), opened_messages(bob)
    assert "Tip-Two" in alice_read and "Tip-One" not in alice_read
    assert "Tip-Two" in bob_read and "Tip-One" in bob_read

    # Bob's vault, read directly: no org secret key, no key of Alice's.
    alice_ids = {m["key_id"] for m in _manifest_entries(usb / "m2.json") if m["account"] == "alice"}
    with Vault.open(bob, PASS) as vault:
        ring = vault.keyring
        plain = ring.to_json()
    assert ring.role == "journalist" and ring.org is None and ring.org_public == org.public_key
    assert json.loads(plain)["org_seed"] is None
    assert all(r.secret is not None and r.account == "bob" for r in ring.recipients)
    assert not {r.key_id for r in ring.recipients} & alice_ids
    alice_pk = next(
        m["public_key"] for m in _manifest_entries(usb / "m2.json") if m["account"] == "alice"
    )
    assert alice_pk.encode() not in plain
    # and the signer's vault holds no journalist's secret key
    with Vault.open(signer, PASS) as vault:
        assert vault.keyring.org is not None
        assert all(r.secret is None for r in vault.keyring.recipients)

    # Bob rotates by request; the signer retires the old key (asks first) and signs.
    old_bob = next(m for m in _manifest_entries(usb / "m2.json") if m["account"] == "bob")
    out = str(usb / "bob2.request")
    run(bob, "keys", "request", "--account", "bob", "--label", "Bob Editor", "--out", out)
    run(signer, "keys", "accept", str(usb / "bob2.request"), "--yes")
    ambiguous = run(signer, "keys", "retire", "bob", "--yes", code=1).stderr
    assert "matches 2 keys" in ambiguous and old_bob["key_id"][:8] in ambiguous
    run(signer, "keys", "retire", old_bob["key_id"][:8], stdin=f"{PASS}\nn\n", code=2)
    run(signer, "keys", "retire", old_bob["key_id"][:8], stdin=f"{PASS}\ny\n")
    run(signer, "manifest", "--out", str(usb / "m3.json"))
    summary = server_run("install-manifest", "--yes", str(usb / "m3.json"))
    new_bob = next(m for m in _manifest_entries(usb / "m3.json") if m["account"] == "bob")
    assert new_bob["key_id"] != old_bob["key_id"]
    assert re.search(rf"added\s+{new_bob['key_id'][:8]}\s+bob\s+Bob Editor", summary)
    assert re.search(rf"retired\s+{old_bob['key_id'][:8]}\s+bob\s+Bob Editor", summary)

    # The server shows the new key id, and lists Tip-One (sealed only to the retired key)
    # but not Tip-Two (Alice's key still opens it).
    submit(app, "Tip-Three: after the rotation")
    admin = app.test_client()
    assert staff_login(app, admin, make_staff(app, "chief", admin=True)).status_code == 303
    page = admin.get("/admin/").text
    assert new_bob["key_id"][:8] in page and old_bob["key_id"][:8] not in page
    stale = admin.get("/admin/keys/stale").text
    rows = re.findall(r"<tr><td><code>([0-9a-f]{32})</code>", stale)
    assert len(rows) == 1 and f"<code>{old_bob['key_id'][:8]}</code>" in stale
    listed = CliRunner().invoke(server, ["sealed-to-retired"])
    assert listed.exit_code == 0 and listed.stdout.split()[0] == rows[0]
    assert f"{old_bob['key_id'][:8]} bob Bob Editor" in listed.stdout
    assert listed.stdout.count("\n") == 1 and "1 submissions sealed only" in listed.stderr
    bundle3 = export(app, api_token(app, "alice"), usb / "export3.bundle")
    run(bob, "import", str(bundle3))
    assert "Tip-Three" in opened_messages(bob)
    sources = admin.get("/journalist/").text
    pages = "".join(
        admin.get(f"/journalist/sources/{s}").text
        for s in set(re.findall(r'href="/journalist/sources/([0-9a-f]{32})"', sources))
    )
    new_short = new_bob["key_id"][:8]
    assert f'Bob Editor <span class="account">bob</span> <code>{new_short}</code>' in pages
    assert f"<code>{old_bob['key_id'][:8]}</code>" in pages  # the old tips still name the old key


def _manifest_entries(path: Path) -> list[dict[str, str]]:
    outer = json.loads(path.read_text())
    body = json.loads(base64.b64decode(outer["body"]))
    assert body["v"] == 2
    entries: list[dict[str, str]] = body["recipients"]
    return entries
