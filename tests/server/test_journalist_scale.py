"""The journalist lists at the scale of a big leak (issue 14; the figures: bench/journalist.py):
a page makes the same few queries however many rows it shows, the keyset cursor starts the
index scan (no walk over every row above the page), "new for me" counts per source stay right
through downloads and deletions, and migration 0007 copies each download's source.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, and_, event, insert, inspect, or_, select, text
from sqlalchemy.orm import Session

from tipline.server import db, transfer
from tipline.server.models import Account, Assignment, Download, Source, Submission, new_id

from .conftest import Keys, make_staff
from .test_journalist import store_source
from .test_per_journalist import api_token, listed, login


@contextmanager
def statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Every SQL statement the engine runs inside the block, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def note(_conn: Any, _cursor: Any, statement: str, params: Any, *_rest: Any) -> None:
        seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def add_sources(app: Flask, count: int, per_source: int, day: datetime.date) -> list[str]:
    """Rows only (no blobs): enough for the sources list."""
    ids = [new_id() for _ in range(count)]
    with db.engine_of(app).begin() as conn:
        conn.execute(
            insert(Source.__table__),
            [
                {
                    "id": i,
                    "designation": f"bulk {n}",
                    "token_hash": new_id().encode(),
                    "reply_public_key": bytes(32),
                    "created": day,
                }
                for n, i in enumerate(ids)
            ],
        )
        conn.execute(
            insert(Submission.__table__),
            [{"id": new_id(), "source_id": i, "size": 1} for i in ids for _ in range(per_source)],
        )
    return ids


def count_of(app: Flask, client: FlaskClient, path: str, headers: Any = None) -> int:
    with statements(db.engine_of(app)) as seen:
        page = client.get(path, headers=headers)
    assert page.status_code == 200, (path, page.status_code)
    return len(seen)


def test_list_pages_make_the_same_few_queries_however_many_rows(app: Flask, org_keys: Keys) -> None:
    alice = login(app, "alice")
    headers = api_token(alice)
    few = store_source(app, [org_keys.alice.public.public_key], 1)
    assert (
        alice.post(
            f"/api/journalist/sources/{few.source_id}/assign",
            headers=headers,
            json={"usernames": ["alice"]},
        ).status_code
        == 200
    )
    pages = [
        ("/journalist/", None),
        ("/journalist/?assigned=1", None),
        ("/journalist/?new=1", None),
        (f"/journalist/sources/{few.source_id}", None),
        ("/api/journalist/sources", headers),
        ("/api/journalist/sources?assigned=me&new=me", headers),
        (f"/api/journalist/sources/{few.source_id}/submissions", headers),
    ]
    for path, h in pages:
        alice.get(path, headers=h)  # warm: the first request of a kind may load more
    small = {path: count_of(app, alice, path, h) for path, h in pages}
    # Many more rows than a page holds: every listed source assigned to Alice and new for her,
    # and the measured source with more submissions than a page.
    day = datetime.date(2026, 11, 21)
    many = add_sources(app, transfer.PAGE + 20, 3, day)
    with app.app_context():
        session = db.session()
        me = session.scalars(select(Account.id).where(Account.username == "alice")).one()
        session.execute(
            insert(Assignment), [{"source_id": i, "account_id": me, "created": day} for i in many]
        )
        session.execute(
            insert(Submission),
            [{"id": new_id(), "source_id": few.source_id, "size": 1} for _ in range(60)],
        )
        session.commit()
    large = {path: count_of(app, alice, path, h) for path, h in pages}
    assert large == small
    assert min(small.values()) >= 3  # control: the pages' own statements are counted
    assert len(listed(alice, "?assigned=1&new=1")) == transfer.PAGE  # the pages were full
    # Control: a statement per row would be seen.
    with app.app_context(), statements(db.engine_of(app)) as seen:
        for i in many:
            db.session().get(Source, i)
    assert len(seen) >= len(many)


def plan(session: Session, statement: str, params: Any) -> str:
    """The query plan of one captured statement; PostgreSQL is told to avoid a sequential scan
    when it can, since a table this small would otherwise be read whole whatever the query."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
        return "\n".join(str(r[-1]) for r in rows)
    conn.execute(text("SET LOCAL enable_seqscan = off"))
    return "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, params).all())


def starts_at_cursor(found: str, dialect: str) -> bool:
    if dialect == "sqlite":
        return (
            re.search(r"USING (COVERING )?INDEX \w+ \(.*\(created,\w+\)<\(\?,\?\)", found)
            is not None
        )
    return "Index Cond: (" in found and "ROW(" in found.partition("Index Cond: (")[2]


def test_the_cursor_starts_the_index_scan(app: Flask) -> None:
    day = datetime.date(2026, 11, 21)
    ids = add_sources(app, 30, 1, day)
    make_staff(app, "alice")
    with app.app_context():
        session = db.session()
        me = session.scalars(select(Account.id)).one()
        dialect = session.get_bind().dialect.name
        session.execute(
            insert(Assignment), [{"source_id": i, "account_id": me, "created": day} for i in ids]
        )
        session.commit()
        for assigned in (False, True):  # the sources' index, or the account's assignments'
            rows, following = transfer.list_sources(session, me, limit=10, assigned=assigned)
            assert following is not None
            with statements(db.engine_of(app)) as seen:
                after, _ = transfer.list_sources(session, me, following, 10, assigned=assigned)
            assert {r.id for r in rows}.isdisjoint(r.id for r in after) and len(after) == 10
            (page_query,) = [(s, p) for s, p in seen if "LIMIT" in s.upper()]
            found = plan(session, *page_query)
            assert starts_at_cursor(found, dialect), assigned
            # Assigned: the account's own rows, not every source with a look-up each.
            assert ("ix_assignments_account_id_created_source_id" in found) == assigned
            session.rollback()
        # Control: the same position written as an OR is applied to every row from the top.
        day, row_id = following.split(".")
        old = (
            select(Source.id)
            .where(
                or_(
                    Source.created < datetime.date.fromisoformat(day),
                    and_(Source.created == datetime.date.fromisoformat(day), Source.id < row_id),
                )
            )
            .order_by(Source.created.desc(), Source.id.desc())
            .limit(11)
        )
        compiled = old.compile(session.get_bind())
        params: Any = (
            tuple(compiled.params[k] for k in compiled.positiontup or [])
            if dialect == "sqlite"
            else compiled.params
        )
        assert not starts_at_cursor(plan(session, str(compiled), params), dialect)
        session.rollback()
    assert len(ids) == 30


def test_new_for_me_counts_through_downloads_and_deletions(app: Flask, org_keys: Keys) -> None:
    alice = login(app, "alice")
    headers = api_token(alice)
    stored = store_source(app, [org_keys.alice.public.public_key], 3)
    other = store_source(app, [org_keys.alice.public.public_key], 1)

    def new_counts() -> dict[str, int]:
        found = alice.get("/api/journalist/sources?new=me", headers=headers).get_json()
        return {s["id"]: s["new"] for s in found["sources"]}

    assert new_counts() == {stored.source_id: 3, other.source_id: 1}
    marked = alice.post(
        "/api/journalist/submissions/downloaded",
        headers=headers,
        json={"ids": stored.submissions[:2]},
    )
    assert marked.get_json() == {"marked": 2}
    assert new_counts() == {stored.source_id: 1, other.source_id: 1}
    # Deleting a submission she downloaded leaves one new; deleting the new one, none.
    for gone, left in [
        (stored.submissions[0], {stored.source_id: 1, other.source_id: 1}),
        (stored.submissions[2], {other.source_id: 1}),
    ]:
        deleted = alice.post(
            "/api/journalist/submissions/delete",
            headers=headers,
            json={"ids": [gone], "confirm": True},
        )
        assert deleted.get_json() == {"deleted": 1}
        assert new_counts() == left
    # A new submission to a source she had finished makes it new again.
    with app.app_context():
        db.session().add(Submission(id=new_id(), source_id=stored.source_id, size=1))
        db.session().commit()
    assert new_counts() == {stored.source_id: 1, other.source_id: 1}
    with app.app_context():
        rows = db.session().execute(select(Download.submission_id, Download.source_id)).all()
    assert rows == [(stored.submissions[1], stored.source_id)]


def test_migration_0007_copies_sources_and_days(database_url: str, tmp_path: Path) -> None:
    engine = db.make_engine(database_url)
    try:
        if inspect(engine).has_table("alembic_version"):
            db.downgrade(engine, "base")
        db.upgrade(engine, tmp_path, "0006")
        account, sources, subs = new_id(), [new_id(), new_id()], [new_id(), new_id(), new_id()]
        with engine.begin() as conn:
            # Accounts, sources and submissions are at 0006 what they are at head.
            conn.execute(
                insert(Account.__table__).values(id=account, username="staff", password_hash="x")
            )
            for s in sources:
                conn.execute(
                    insert(Source.__table__).values(
                        id=s,
                        designation="d",
                        token_hash=new_id().encode(),
                        reply_public_key=bytes(32),
                    )
                )
            for sub, source in zip(subs, [sources[0], sources[1], sources[1]], strict=True):
                conn.execute(insert(Submission.__table__).values(id=sub, source_id=source, size=1))
            for sub in subs[:2]:
                conn.execute(
                    text(
                        "INSERT INTO downloads (account_id, submission_id, day) "
                        "VALUES (:account, :sub, :day)"
                    ),
                    {"account": account, "sub": sub, "day": datetime.date(2026, 10, 2)},
                )
            conn.execute(
                text("INSERT INTO assignments (source_id, account_id) VALUES (:s, :a)"),
                {"s": sources[1], "a": account},
            )
            conn.execute(
                text("UPDATE sources SET created = :day WHERE id = :s"),
                {"day": datetime.date(2026, 9, 30), "s": sources[1]},
            )
        db.upgrade(engine, tmp_path, "0007")
        with engine.connect() as conn:
            found = sorted(conn.execute(text("SELECT submission_id, source_id FROM downloads")))
        assert found == sorted([(subs[0], sources[0]), (subs[1], sources[1])])
        with engine.connect() as conn:
            assigned = conn.execute(text("SELECT source_id, account_id, created FROM assignments"))
            copied = [(r[0], r[1], str(r[2])) for r in assigned]  # SQLite: text
            assert copied == [(sources[1], account, "2026-09-30")]
        db.downgrade(engine, "0006")
        columns = {c["name"] for c in inspect(engine).get_columns("downloads")}
        assert columns == {"account_id", "submission_id", "day"}
        columns = {c["name"] for c in inspect(engine).get_columns("assignments")}
        assert columns == {"source_id", "account_id"}
        with engine.connect() as conn:
            kept = sorted(conn.execute(text("SELECT submission_id FROM downloads")))
        assert kept == sorted([(subs[0],), (subs[1],)])
        # Leave the (session-wide) PostgreSQL database empty at head, as the next test expects.
        db.downgrade(engine, "base")
        db.upgrade(engine, tmp_path, "head")
    finally:
        engine.dispose()
