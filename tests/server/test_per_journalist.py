"""Per-journalist state on the server (issue 12): "new" and "downloaded" per account, so one
journalist's export hides nothing from another; sources assigned to journalists, with the
"assigned to me" and "new for me" filters on the list page and in the API; retention still
counts from the first download by anyone; migration 0006 carries existing flags over.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import false, insert, inspect, select

from tipline.server import db, retention, settings, transfer
from tipline.server.models import (
    Account,
    Assignment,
    AuditEntry,
    Download,
    Source,
    Submission,
    new_id,
)

from .conftest import Keys, make_staff, new_token, staff_login
from .test_journalist import _read_bundle, store_source, token_of


def login(app: Flask, name: str) -> FlaskClient:
    client = app.test_client()
    assert staff_login(app, client, make_staff(app, name)).status_code == 303
    return client


def api_token(client: FlaskClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {new_token(client, 't')}"}


def export_new(client: FlaskClient) -> Any:
    return client.post("/journalist/export-new", data={"csrf_token": token_of(client)})


def listed(client: FlaskClient, query: str = "") -> set[str]:
    """The source ids a list page links to."""
    page = client.get(f"/journalist/{query}")
    assert page.status_code == 200
    return set(re.findall(r"/journalist/sources/([0-9a-f]{32})\"", page.text))


def test_alice_exporting_new_leaves_bobs_new_alone(app: Flask, org_keys: Keys) -> None:
    alice, bob = login(app, "alice"), login(app, "bob")
    a = store_source(app, [org_keys.alice.public.public_key], 2)
    b = store_source(app, [org_keys.alice.public.public_key], 1)
    everything = set(a.submissions + b.submissions)
    first = export_new(alice)
    assert set(_read_bundle(first.get_data())) == everything
    # Control: Alice's new is now empty...
    again = export_new(alice)
    assert again.status_code == 404 and "nothing new" in again.text
    assert listed(alice, "?new=1") == set()
    # ...and Bob's still has all of it, on the list page and in his own bundle.
    assert listed(bob, "?new=1") == {a.source_id, b.source_id}
    assert "<td>2</td>\n<td>2</td>" in bob.get("/journalist/").text  # 2 submissions, 2 new
    with app.app_context():
        first_day = {s.id: s.downloaded_on for s in db.session().scalars(select(Submission))}
    assert set(_read_bundle(export_new(bob).get_data())) == everything
    assert export_new(bob).status_code == 404
    with app.app_context():
        session = db.session()
        per_account = session.execute(
            select(Account.username, Download.submission_id).join(
                Account, Account.id == Download.account_id
            )
        ).all()
        # The retention clock is the first download: Bob's does not move it.
        assert {s.id: s.downloaded_on for s in session.scalars(select(Submission))} == first_day
    assert sorted(per_account) == sorted(
        [("alice", i) for i in everything] + [("bob", i) for i in everything]
    )


def test_downloaded_marks_are_per_account(app: Flask, org_keys: Keys) -> None:
    alice, bob = login(app, "alice"), login(app, "bob")
    stored = store_source(app, [org_keys.alice.public.public_key], 2)
    page = f"/journalist/sources/{stored.source_id}"
    marked = alice.post(
        "/journalist/selection",
        data={
            "csrf_token": token_of(alice, page),
            "action": "downloaded",
            "ids": [stored.submissions[0]],
        },
    )
    assert marked.status_code == 303
    alices, bobs = api_token(alice), api_token(bob)
    url = f"/api/journalist/sources/{stored.source_id}/submissions"

    def flags(headers: dict[str, str]) -> dict[str, bool]:
        body = alice.get(url, headers=headers).get_json()
        return {s["id"]: s["downloaded"] for s in body["submissions"]}

    assert flags(alices) == {stored.submissions[0]: True, stored.submissions[1]: False}
    assert flags(bobs) == {stored.submissions[0]: False, stored.submissions[1]: False}
    assert alice.get(page).text.count("<td>yes</td>") == 1
    assert bob.get(page).text.count("<td>yes</td>") == 0
    # Bob marks through the API: only his own marks change.
    done = bob.post(
        "/api/journalist/submissions/downloaded", headers=bobs, json={"ids": stored.submissions}
    )
    assert done.get_json() == {"marked": 2}
    assert flags(bobs) == dict.fromkeys(stored.submissions, True)
    assert flags(alices) == {stored.submissions[0]: True, stored.submissions[1]: False}


def assign_form(client: FlaskClient, source_id: str, names: list[str], csrf: bool = True) -> Any:
    data: dict[str, Any] = {"accounts": names}
    if csrf:
        data["csrf_token"] = token_of(client, f"/journalist/sources/{source_id}")
    return client.post(f"/journalist/sources/{source_id}/assign", data=data)


def assigned_to(app: Flask, source_id: str) -> set[str]:
    with app.app_context():
        return set(
            db.session().scalars(
                select(Account.username)
                .join(Assignment, Assignment.account_id == Account.id)
                .where(Assignment.source_id == source_id)
            )
        )


def test_assignment_and_the_two_filters(app: Flask, org_keys: Keys) -> None:
    alice, bob = login(app, "alice"), login(app, "bob")
    both, bobs, nobodys = (
        store_source(app, [org_keys.alice.public.public_key], 1) for _ in range(3)
    )
    assert assign_form(alice, both.source_id, ["alice", "bob"]).status_code == 303
    assert assign_form(alice, bobs.source_id, ["bob"]).status_code == 303
    assert assigned_to(app, both.source_id) == {"alice", "bob"}
    # Refused without CSRF, or for an unknown account: nothing changes.
    assert assign_form(alice, bobs.source_id, ["alice"], csrf=False).status_code == 400
    assert assign_form(alice, bobs.source_id, ["alice", "mallory"]).status_code == 400
    assert assigned_to(app, bobs.source_id) == {"bob"}
    page = alice.get(f"/journalist/sources/{both.source_id}").text
    assert 'name="accounts" value="bob" checked' in page
    assert '<td class="assigned">alice, bob</td>' in alice.get("/journalist/").text
    # Assigned to me: the unassigned source and Bob's alone are not listed for Alice.
    assert listed(alice) == {both.source_id, bobs.source_id, nobodys.source_id}
    assert listed(alice, "?assigned=1") == {both.source_id}
    assert listed(bob, "?assigned=1") == {both.source_id, bobs.source_id}
    # New for me: Alice downloads one source's submission; it stays new for Bob.
    alice.post(
        "/journalist/selection",
        data={"csrf_token": token_of(alice), "action": "downloaded", "ids": both.submissions},
    )
    assert listed(alice, "?new=1") == {bobs.source_id, nobodys.source_id}
    assert listed(bob, "?new=1") == {both.source_id, bobs.source_id, nobodys.source_id}
    # Unassigning: the empty list.
    assert assign_form(bob, bobs.source_id, []).status_code == 303
    assert listed(bob, "?assigned=1") == {both.source_id}
    # The audit log has usernames and counts, never a source.
    with app.app_context():
        entries = [e for e in db.session().scalars(select(AuditEntry)) if e.action == "assign"]
        designations = set(db.session().scalars(select(Source.designation)))
    assert [e.detail for e in entries] == [
        "added: alice, bob; removed: -",
        "added: bob; removed: -",
        "added: -; removed: bob",
    ]
    for entry in entries:
        for secret in [both.source_id, bobs.source_id, *designations]:
            assert secret not in entry.detail


def test_api_assign_and_filters_page_by_key(app: Flask, org_keys: Keys) -> None:
    alice = login(app, "alice")
    login(app, "bob")
    headers = api_token(alice)
    stored = [store_source(app, [org_keys.alice.public.public_key], 1) for _ in range(5)]
    mine = {s.source_id for s in stored[:3]}
    for s in stored[:3]:
        done = alice.post(
            f"/api/journalist/sources/{s.source_id}/assign",
            headers=headers,
            json={"usernames": ["alice", "bob"]},
        )
        assert done.status_code == 200
        assert done.get_json() == {
            "assigned": ["alice", "bob"],
            "added": ["alice", "bob"],
            "removed": [],
        }
    alice.post(
        f"/api/journalist/sources/{stored[3].source_id}/assign",
        headers=headers,
        json={"usernames": ["bob"]},
    )
    bad = alice.post(
        f"/api/journalist/sources/{stored[4].source_id}/assign",
        headers=headers,
        json={"usernames": ["nobody"]},
    )
    assert bad.status_code == 400 and assigned_to(app, stored[4].source_id) == set()

    def walk(query: str) -> list[str]:
        seen: list[str] = []
        after = ""
        while True:
            page = alice.get(f"/api/journalist/sources?limit=1&{query}{after}", headers=headers)
            assert page.status_code == 200, page.text
            body = page.get_json()
            seen += [s["id"] for s in body["sources"]]
            if body["next"] is None:
                return seen
            after = f"&after={body['next']}"

    rows = alice.get("/api/journalist/sources", headers=headers).get_json()["sources"]
    assert {r["id"]: r["assigned"] for r in rows} == {
        **{s: ["alice", "bob"] for s in mine},
        stored[3].source_id: ["bob"],
        stored[4].source_id: [],
    }
    assigned = walk("assigned=me")
    assert len(assigned) == 3 and set(assigned) == mine  # each once, one page at a time
    assert set(walk("")) == {s.source_id for s in stored}
    # New for me: after exporting two of them, only the other three are listed.
    alice.post(
        "/api/journalist/export",
        headers=headers,
        json={"ids": stored[0].submissions + stored[1].submissions},
    ).get_data()
    assert set(walk("new=me")) == {s.source_id for s in stored[2:]}
    assert set(walk("new=me&assigned=me")) == {stored[2].source_id}
    refused = alice.get("/api/journalist/sources?new=yes", headers=headers)
    assert refused.status_code == 400


def test_retention_counts_from_the_first_download(app: Flask, org_keys: Keys) -> None:
    alice = login(app, "alice")
    login(app, "bob")  # never downloads anything
    stored = store_source(app, [org_keys.alice.public.public_key], 2)
    taken, untouched = stored.submissions
    alice.post(
        "/journalist/selection",
        data={"csrf_token": token_of(alice), "action": "downloaded", "ids": [taken]},
    )
    today = datetime.date(2026, 11, 25)
    with app.app_context():
        session = db.session()
        row = session.get(Submission, taken)
        assert row is not None and row.downloaded_on is not None
        row.downloaded_on = today - datetime.timedelta(days=10)
        session.commit()
        current = settings.load(session)
        settings.save(
            session,
            settings.Settings(**{**current.__dict__, "retention_days_after_download": 7}),
        )
        swept = retention.run(session, app.extensions["tipline.blobs"], today)
        left = set(session.scalars(select(Submission.id)))
        downloads = list(session.scalars(select(Download)))
    # Gone although Bob never downloaded it; the untouched one stays; its marks went with it.
    assert swept.submissions == 1 and left == {untouched}
    assert downloads == []


def test_migration_0006_carries_existing_flags(database_url: str, tmp_path: Path) -> None:
    engine = db.make_engine(database_url)
    try:
        if inspect(engine).has_table("alembic_version"):
            db.downgrade(engine, "base")
        db.upgrade(engine, tmp_path, "0005")
        day = datetime.date(2026, 10, 1)
        accounts = [new_id(), new_id()]
        source, taken, fresh = new_id(), new_id(), new_id()
        with engine.begin() as conn:
            for n, account in enumerate(accounts):
                conn.execute(
                    insert(Account.__table__).values(
                        id=account, username=f"staff{n}", password_hash="x", is_admin=n == 1
                    )
                )
            conn.execute(
                insert(Source.__table__).values(
                    id=source,
                    designation="d",
                    token_hash=new_id().encode(),
                    reply_public_key=bytes(32),
                )
            )
            conn.execute(
                insert(Submission.__table__).values(
                    id=taken, source_id=source, size=1, downloaded=True, downloaded_on=day
                )
            )
            conn.execute(insert(Submission.__table__).values(id=fresh, source_id=source, size=1))
        db.upgrade(engine, tmp_path, "0006")
        with engine.connect() as conn:
            rows = conn.execute(select(Download.account_id, Download.submission_id, Download.day))
            found = sorted(rows.all())
            flags = dict(conn.execute(select(Submission.id, Submission.downloaded_on)).all())
        # Every existing account has downloaded what was downloaded, on its day; not the rest.
        assert found == sorted((a, taken, day) for a in accounts)
        assert flags == {taken: day, fresh: None}
        db.downgrade(engine, "0005")
        assert not inspect(engine).has_table("downloads")
        with engine.connect() as conn:
            kept = dict(conn.execute(select(Submission.id, Submission.downloaded)).all())
        assert kept == {taken: True, fresh: False}
        # Leave the (session-wide) PostgreSQL database empty at head, as the next test expects.
        db.downgrade(engine, "base")
        db.upgrade(engine, tmp_path, "head")
    finally:
        engine.dispose()


def test_a_mark_racing_another_is_retried(app: Flask, org_keys: Keys, monkeypatch: Any) -> None:
    """Two exports of the same items by one account ending at once: the second's marks collide
    with the first's rows and are taken again, not lost in an error after the bundle went out."""
    make_staff(app, "alice")
    stored = store_source(app, [org_keys.alice.public.public_key], 2)
    with app.app_context():
        session = db.session()
        alice = session.scalars(select(Account).where(Account.username == "alice")).one()
        assert transfer.mark_downloaded(session, alice.id, stored.submissions[:1]) == 1
        real, calls = transfer._downloaded_by, []

        def stale(account_id: str) -> Any:  # the first look misses the other export's rows
            calls.append(account_id)
            return real(account_id) if len(calls) > 1 else false()

        monkeypatch.setattr(transfer, "_downloaded_by", stale)
        assert transfer.mark_downloaded(session, alice.id, stored.submissions) == 1
        assert len(calls) == 2  # control: the collision happened and was retried
        assert len(list(session.scalars(select(Download)))) == 2
