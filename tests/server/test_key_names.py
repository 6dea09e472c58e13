"""The server names every key by account, label and short key id (so a rotated key and its
replacement, which share a label, are told apart), lists the items still sealed only to retired
keys, and says how long the manifest in force has left, or why none is in force.
"""

from __future__ import annotations

import base64
import datetime
import re

from flask import Flask
from flask.testing import FlaskClient

from tipline.crypto import keys, manifest
from tipline.server import db, keyset
from tipline.server.models import InstalledManifest

from .conftest import Keys, make_staff, page_token, staff_login
from .test_admin import upload_manifest
from .test_journalist import store_source
from .test_journalist_api import auth
from .test_journalist_api import token as token  # a fixture, used by name

TODAY = datetime.datetime.now(datetime.UTC).date()


def _login(app: Flask, name: str, admin: bool) -> FlaskClient:
    client = app.test_client()
    assert staff_login(app, client, make_staff(app, name, admin=admin)).status_code == 303
    return client


def _install(client: FlaskClient, data: bytes) -> None:
    summary = upload_manifest(client, data)
    assert summary.status_code == 200, summary.text
    done = client.post(
        "/admin/manifest/confirm",
        data={"csrf_token": page_token(summary.text), "manifest": base64.b64encode(data).decode()},
    )
    assert "is now in force" in done.text


def _signed(org_keys: Keys, version: int, who: list[keys.RecipientPublic], days: int = 90) -> bytes:
    return manifest.sign_manifest(
        org_keys.org, version, who, TODAY, TODAY + datetime.timedelta(days=days)
    )


def _cells(text: str, table_id: str) -> list[list[str]]:
    table = text.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
    cells = [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)]
        for r in rows
    ]
    return [c for c in cells if c]  # the heading row has no <td>


def test_rotated_key_and_its_replacement_are_told_apart(app: Flask, org_keys: Keys) -> None:
    admin = _login(app, "chief", True)
    old = keys.RecipientSecret.generate("Alice Reporter")
    new = keys.RecipientSecret.generate("Alice Reporter")  # same label, as after a rotation
    old_pub = keys.RecipientPublic(old.public.public_key, old.label, "alice")
    new_pub = keys.RecipientPublic(new.public.public_key, new.label, "alice")
    make_staff(app, "alice")  # a manifest may name only accounts the server has
    _install(admin, _signed(org_keys, 2, [old_pub]))
    before = store_source(app, [old_pub.public_key], 2)

    summary = upload_manifest(admin, _signed(org_keys, 3, [new_pub]))
    rows = _cells(summary.text, "summary")
    old_short, new_short = old_pub.key_id.hex()[:8], new_pub.key_id.hex()[:8]
    assert rows == [
        ["added", "alice", "Alice Reporter", new_short],
        ["retired", "alice", "Alice Reporter", old_short],
    ]
    _install(admin, _signed(org_keys, 3, [new_pub]))
    after = store_source(app, [new_pub.public_key], 1)

    # the admin page lists the keys in force by account, label and short id
    page = admin.get("/admin/").text
    assert _cells(page, "manifest-keys") == [["alice", "Alice Reporter", new_short]]
    # "Sealed to" on the journalist page tells the two apart
    journalist = _login(app, "reporter", False)
    old_page = journalist.get(f"/journalist/sources/{before.source_id}").text
    new_page = journalist.get(f"/journalist/sources/{after.source_id}").text
    assert f'Alice Reporter <span class="account">alice</span> <code>{old_short}</code>' in (
        old_page
    )
    assert new_short in new_page and old_short not in new_page
    # items still sealed only to the retired key: exactly the two from before the rotation
    stale = admin.get("/admin/keys/stale")
    assert stale.status_code == 200
    listed = _cells(stale.text, "stale")
    assert sorted(r[0] for r in listed) == sorted(before.submissions)
    assert all(r[3] == f"Alice Reporter alice {old_short}" for r in listed)
    assert journalist.get("/admin/keys/stale").status_code in (302, 303, 403)


def test_api_names_keys_with_account_and_short_id(
    app: Flask, org_keys: Keys, client: FlaskClient, token: str
) -> None:
    admin = _login(app, "chief", True)
    bob = keys.RecipientPublic(org_keys.bob.public.public_key, "Bob", "bob")
    make_staff(app, "bob")
    _install(admin, _signed(org_keys, 2, [bob]))
    stored = store_source(app, [bob.public_key], 1)
    got = client.get(f"/api/journalist/sources/{stored.source_id}/submissions", headers=auth(token))
    (row,) = got.get_json()["submissions"]
    assert row["sealed_to"] == ["Bob"]
    assert row["sealed_to_keys"] == [
        {
            "key_id": bob.key_id.hex(),
            "short_id": bob.key_id.hex()[:8],
            "label": "Bob",
            "account": "bob",
        }
    ]


def _put(app: Flask, org_keys: Keys, version: int, issued: datetime.date, days: int) -> None:
    """Install a manifest as if on its issue day (time travel: the install rules refuse
    expired and future manifests, which is what is being shown here)."""
    data = manifest.sign_manifest(
        org_keys.org, version, [org_keys.alice.public], issued, issued + datetime.timedelta(days)
    )
    with app.app_context():
        db.session().add(InstalledManifest(version=version, file=data, installed=issued))
        db.session().commit()


def test_lifetime_says_why_none_is_in_force(app_factory: object, org_keys: Keys) -> None:
    app = app_factory(install=False)  # type: ignore[operator]
    org = org_keys.org.public.public_key
    admin = _login(app, "chief", True)
    page = admin.get("/admin/")
    assert "No valid key manifest is in force: none is installed." in page.text
    _put(app, org_keys, 5, TODAY - datetime.timedelta(days=200), 180)
    expired_on = (TODAY - datetime.timedelta(days=20)).isoformat()
    with app.app_context():
        life = keyset.lifetime(db.session(), org)
    assert life.current is None and life.reason == f"version 5 expired on {expired_on}"
    page = admin.get("/admin/")
    assert f"version 5 expired on {expired_on}" in page.text
    journalist = _login(app, "reporter", False)
    notice = journalist.get("/journalist/").text
    assert 'id="manifest-notice"' in notice and f"expired on {expired_on}" in notice
    _put(app, org_keys, 6, TODAY + datetime.timedelta(days=10), 180)
    with app.app_context():
        life = keyset.lifetime(db.session(), org)
    assert life.reason is not None and life.reason.startswith("version 6 is not valid yet")


def test_warns_thirty_days_before_expiry(app: Flask, org_keys: Keys) -> None:
    admin = _login(app, "chief", True)
    journalist = _login(app, "reporter", False)
    # the fixture's manifest has 90 days left: no warning anywhere (the control)
    assert 'id="manifest-expiring"' not in admin.get("/admin/").text
    assert 'id="manifest-notice"' not in journalist.get("/journalist/").text
    _install(admin, _signed(org_keys, 2, [org_keys.alice.public], days=31))
    assert 'id="manifest-expiring"' not in admin.get("/admin/").text
    _install(admin, _signed(org_keys, 3, [org_keys.alice.public], days=30))
    page = admin.get("/admin/").text
    expires = (TODAY + datetime.timedelta(days=30)).isoformat()
    assert 'id="manifest-expiring"' in page and "manifest renew" in page
    assert f"version 3 in force, expires {expires} (30 days left)" in page
    notice = journalist.get("/journalist/").text
    assert 'id="manifest-notice"' in notice and f"expires on {expires}" in notice


def test_manifest_naming_an_unknown_account_is_flagged(app: Flask, org_keys: Keys) -> None:
    admin = _login(app, "chief", True)
    typo = keys.RecipientPublic(org_keys.bob.public.public_key, "Bob", "bbo")
    flagged = upload_manifest(admin, _signed(org_keys, 2, [typo]))
    assert flagged.status_code == 200
    assert "names the staff account <code>bbo</code>, which this server does not have" in (
        flagged.text
    )
    make_staff(app, "bbo")  # the control: once the account exists, no warning
    assert (
        "which this server does not have"
        not in upload_manifest(admin, _signed(org_keys, 2, [typo])).text
    )
