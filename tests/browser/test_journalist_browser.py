"""The journalist and admin pages in Debian's Chromium, served by gunicorn: enrolment and login
with TOTP, downloading an export bundle, uploading a reply bundle, installing a key manifest.
"""

from __future__ import annotations

import datetime
import io
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, BrowserContext
from sqlalchemy import select

from tipline import bundle
from tipline.crypto import keys, manifest
from tipline.crypto.envelope import seal
from tipline.crypto.inner import Inner
from tipline.server import accounts, db, keyset
from tipline.server.models import Reply, new_id

from .journalist_fixtures import StaffServer, admin_context, code_for, staff_server

pytestmark = pytest.mark.browser
# chromium and playwright come from tests/browser/conftest.py (one per session).
__all__ = ["admin_context", "staff_server"]


def test_enrol_and_log_in_with_totp(chromium: Browser, staff_server: StaffServer) -> None:
    app = staff_server.app
    password = accounts.generate_passphrase()
    with app.app_context():
        accounts.create(db.session(), "newcomer", password)
    context = chromium.new_context()
    page = context.new_page()
    page.goto(staff_server.url + "/journalist/login")
    page.get_by_label("Username").fill("newcomer")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/journalist/enrol")
    assert page.locator("figure.qr svg").count() == 1
    secret = page.inner_text("#secret").replace(" ", "")
    page.get_by_label("Code from the app").fill("000000")
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_load_state("domcontentloaded")  # the click returns at commit, maybe bodiless
    assert "not right" in page.inner_text("main")
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url("**/journalist/")
    assert "brave heron" in page.inner_text("main")
    # Log out and in again with the password and a fresh code.
    page.get_by_role("button", name="Log out newcomer").click()
    page.wait_for_url("**/journalist/login")
    page.get_by_label("Username").fill("newcomer")
    page.get_by_label("Password").fill(password)
    page.get_by_label("Two-factor code").fill(code_for(app, "newcomer", secret))
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/journalist/")
    context.close()


def test_download_a_bundle(
    admin_context: BrowserContext, staff_server: StaffServer, tmp_path: Path
) -> None:
    page = admin_context.new_page()
    page.goto(f"{staff_server.url}/journalist/sources/{staff_server.source_id}")
    for sid in staff_server.submissions:
        page.check(f"#pick-{sid}")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download selected as a bundle").click()
    target = tmp_path / "export.tlb"
    info.value.save_as(target)
    store = staff_server.app.extensions["tipline.blobs"]
    with target.open("rb") as src:
        reader = bundle.BundleReader(src, bundle.KIND_EXPORT)
        got = {}
        for entry in reader:
            got[entry.item.id] = entry.read()
            assert entry.finish()
    assert set(got) == set(staff_server.submissions)
    for sid, data in got.items():
        assert store.path("submissions", sid).read_bytes() == data
    page.reload()
    assert "no" not in [c.strip() for c in page.locator("td:nth-child(4)").all_inner_texts()]
    page.close()


def test_upload_a_reply_bundle(
    admin_context: BrowserContext, staff_server: StaffServer, tmp_path: Path
) -> None:
    out = io.BytesIO()
    seal(
        out,
        [bytes(staff_server.reply_key.public_key), staff_server.alice.public.public_key],
        Inner(kind="reply", sealed_by="desk", message="thank you"),
    )
    envelope = out.getvalue()
    reply_id = new_id()
    path = tmp_path / "replies.tlb"
    with path.open("wb") as dst:
        bundle.write_bundle(
            dst,
            bundle.KIND_REPLY,
            [bundle.ReplyItem(reply_id, staff_server.source_id, len(envelope))],
            lambda _item: io.BytesIO(envelope),
        )
    page = admin_context.new_page()
    page.goto(staff_server.url + "/journalist/replies")
    page.get_by_label("Reply bundle").set_input_files(str(path))
    page.get_by_role("button", name="Upload").click()
    page.wait_for_selector("#result")
    assert "1 reply added" in page.inner_text("#result")
    with staff_server.app.app_context():
        assert db.session().scalars(select(Reply.id)).all() == [reply_id]
    store = staff_server.app.extensions["tipline.blobs"]
    assert store.path("replies", reply_id).read_bytes() == envelope
    page.close()


def test_install_a_manifest(
    admin_context: BrowserContext, staff_server: StaffServer, tmp_path: Path
) -> None:
    bob = keys.RecipientSecret.generate("Bob")
    today = datetime.datetime.now(datetime.UTC).date()
    path = tmp_path / "manifest-v2.json"
    path.write_bytes(
        manifest.sign_manifest(
            staff_server.org,
            2,
            [staff_server.alice.public, bob.public],
            today,
            today + datetime.timedelta(days=30),
        )
    )
    page = admin_context.new_page()
    page.goto(staff_server.url + "/admin/")
    page.get_by_label("Signed key manifest from the desk").set_input_files(str(path))
    page.get_by_role("button", name="Check it and show what changes").click()
    page.wait_for_selector("#summary")
    assert "Bob" in page.inner_text("#summary tr.added")
    assert "Alice" in page.inner_text("#summary tr.kept")
    with staff_server.app.app_context():
        assert keyset.installed_version(db.session()) == 1
    page.get_by_role("button", name="Install it").click()
    page.wait_for_selector("#message")
    assert "version 2 is now in force" in page.inner_text("#message")
    with staff_server.app.app_context():
        assert keyset.installed_version(db.session()) == 2
    page.close()
