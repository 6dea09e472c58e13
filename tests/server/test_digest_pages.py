"""The journalist's own daily digest page and what the admin sees of it."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from tipline.server import db
from tipline.server.models import AuditEntry, DigestSubscription

from .conftest import make_staff, page_token, staff_login
from .mail_fixtures import AgeIdentity, GpgIdentity, age_identity, gpg_identity

__all__ = ["age_identity", "gpg_identity"]  # fixtures, used by name below


def logged_in(app: Flask, name: str, admin: bool = False) -> FlaskClient:
    client = app.test_client()
    assert staff_login(app, client, make_staff(app, name, admin)).status_code == 303
    return client


def subscriptions(app: Flask) -> list[DigestSubscription]:
    with app.app_context():
        return list(db.session().query(DigestSubscription).all())


def test_a_journalist_switches_the_digest_on_and_off(
    app_factory: Callable[..., Flask], age_identity: AgeIdentity, gpg_identity: GpgIdentity
) -> None:
    app = app_factory(DIGEST_ENABLED=False)
    client = logged_in(app, "alice")
    assert 'id="digest-link"' in client.get("/journalist/account").text
    page = client.get("/journalist/digest/")
    assert page.status_code == 200 and 'id="digest-state">Off.' in page.text
    assert 'id="digest-disabled"' in page.text  # the admin has not switched it on
    # No CSRF token: refused, nothing stored.
    forged = client.post(
        "/journalist/digest/", data={"email": "a@example.org", "key": age_identity.recipient}
    )
    assert forged.status_code == 400 and subscriptions(app) == []
    token = page_token(page.text)
    # A bad key: the page says why, nothing stored.
    bad = client.post(
        "/journalist/digest/",
        data={"csrf_token": token, "email": "alice@example.org", "key": "age1notakey"},
    )
    assert bad.status_code == 400 and subscriptions(app) == []
    assert "Nothing was changed" in bad.text and "age1 and 58 more" in bad.text
    bad_address = client.post(
        "/journalist/digest/",
        data={
            "csrf_token": token,
            "email": "alice@x\r\nBcc: e@x.org",
            "key": age_identity.recipient,
        },
    )
    assert bad_address.status_code == 400 and "one plain e-mail address" in bad_address.text
    # A good key: on.
    on = client.post(
        "/journalist/digest/",
        data={"csrf_token": token, "email": "alice@example.org", "key": age_identity.recipient},
    )
    assert on.status_code == 200, on.text
    assert f"encrypted to your age key {age_identity.recipient}" in on.text
    (sub,) = subscriptions(app)
    assert (sub.email, sub.key_kind, sub.public_key) == (
        "alice@example.org",
        "age",
        age_identity.recipient,
    )
    # Changed to an OpenPGP key.
    changed = client.post(
        "/journalist/digest/",
        data={"csrf_token": token, "email": "alice@example.org", "key": gpg_identity.public_key},
    )
    assert changed.status_code == 200 and gpg_identity.fingerprint in changed.text
    (sub,) = subscriptions(app)
    assert sub.key_kind == "openpgp" and sub.fingerprint == gpg_identity.fingerprint
    # Off (with a CSRF token only).
    assert client.post("/journalist/digest/off").status_code == 400
    off = client.post("/journalist/digest/off", data={"csrf_token": token})
    assert off.status_code == 303 and subscriptions(app) == []
    with app.app_context():
        actions = [e.action for e in db.session().query(AuditEntry).order_by(AuditEntry.id)]
    assert actions == ["digest-on", "digest-on", "digest-off"]


def test_the_admin_sees_who_has_it_but_not_the_address_or_key(
    app_factory: Callable[..., Flask], gpg_identity: GpgIdentity
) -> None:
    app = app_factory(
        DIGEST_ENABLED=True,
        SMTP_HOST="relay.example.org",
        SMTP_PORT=465,
        SMTP_SECURITY="tls",
        SMTP_FROM="digest@example.org",
        SMTP_USERNAME="relay-user",
        SMTP_PASSWORD="relay-password-marker",
        SMTP_PROXY="socks5://127.0.0.1:9050",
    )
    client = logged_in(app, "alice")
    token = page_token(client.get("/journalist/digest/").text)
    client.post(
        "/journalist/digest/",
        data={
            "csrf_token": token,
            "email": "alice-private@example.org",
            "key": gpg_identity.public_key,
        },
    )
    admin = logged_in(app, "boss", admin=True)
    page = admin.get("/admin/").text
    table = page.split('id="digest-subscribers"', 1)[1].split("</table>", 1)[0]
    assert "alice" in table and gpg_identity.fingerprint in table and "OpenPGP" in table
    assert "alice-private@example.org" not in page
    assert "BEGIN PGP" not in page
    assert "relay.example.org:465 (tls) through socks5://127.0.0.1:9050" in page
    assert "relay-password-marker" not in page and "relay-user" not in page
