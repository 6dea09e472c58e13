"""Journalist list pages at the scale of a big leak, on SQLite and PostgreSQL, and the peak
memory of exporting a 1 GiB bundle.

    python bench/journalist.py [--sources 10000] [--per-source 10] [--requests 60]
                               [--postgres-only] [--no-export]
    make bench-journalist-big   # 100,000 sources, 1,000,000 submissions, PostgreSQL only

List pages: p95 latency (in-process Flask test client, logged in) of the first sources page, a
deep page reached by walking the keyset cursor 20 pages in, the page at the middle of the list,
the "assigned to me" and "new for me" filters, a source's page, and the JSON API's lists the
desk uses (sources, with each filter, and a source's submissions); against a baseline measured
in the same run, the login page (a template, no database). Goal: p95 < 100 ms. Each page's number
of SQL statements is printed too (it must not grow with the number of sources).

The rows are loaded directly (COPY on PostgreSQL, executemany on SQLite), with per-journalist
state shaped like a desk that has worked through most of a leak: the measuring journalist has
downloaded everything but 1 % of the sources' submissions and is assigned 1 % of the sources;
a second journalist has downloaded half and is assigned a tenth. PostgreSQL is then VACUUM
ANALYZEd, as autovacuum would have done to tables that grew to this size; SQLite is left as the
app leaves it.

Export: a gunicorn worker (deploy/gunicorn.conf.py) streams a 1 GiB export bundle (8 envelopes
of 128 MiB) through the token API; its peak RSS before and after. Goal: < 100 MiB peak.
"""

from __future__ import annotations

import argparse
import datetime
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.server.conftest import (  # noqa: E402
    POSTGRES_URL,
    _sqlalchemy_url,
    make_staff,
    org_keys,
    sealed_submission,
    staff_login,
)
from tipline.server import accounts, db, keyset  # noqa: E402
from tipline.server.models import Account, Source, Submission, new_id  # noqa: E402

GOAL_MS = 100.0
START = datetime.date(2025, 1, 1)
COLUMNS = {
    "sources": (
        "id",
        "designation",
        "token_hash",
        "reply_public_key",
        "created",
        "starred",
        "session_epoch",
        "submitted",
    ),
    "submissions": ("id", "source_id", "size", "received", "downloaded", "downloaded_on"),
    "downloads": ("account_id", "submission_id", "source_id", "day"),
    "assignments": ("source_id", "account_id", "created"),
}


def rows_of(
    sources: int, per_source: int, me: str, other: str
) -> dict[str, Iterator[tuple[Any, ...]]]:
    """The four tables' rows, made lazily (a million submissions need not sit in memory).

    Source n: created on day n % 365; its submissions on the days after. The measuring account
    ``me`` has downloaded every submission except those of sources n % 100 == 7 and is assigned
    the sources n % 100 == 3; ``other`` has downloaded those of even sources and is assigned
    every tenth source.
    """
    ids = [new_id() for _ in range(sources)]
    sub_ids = [[new_id() for _ in range(per_source)] for _ in range(sources)]

    def day(n: int, m: int = 0) -> datetime.date:
        return START + datetime.timedelta(days=n % 365 + m)

    def source_rows() -> Iterator[tuple[Any, ...]]:
        for n, sid in enumerate(ids):
            yield (
                sid,
                f"source {n}",
                secrets.token_bytes(32),
                bytes(32),
                day(n),
                n % 50 == 0,
                0,
                True,
            )

    def submission_rows() -> Iterator[tuple[Any, ...]]:
        for n, sid in enumerate(ids):
            taken = n % 100 != 7 or n % 2 == 0
            for m, sub in enumerate(sub_ids[n]):
                yield (sub, sid, 4096 + m, day(n, m), taken, day(n, m) if taken else None)

    def download_rows() -> Iterator[tuple[Any, ...]]:
        for n, sid in enumerate(ids):
            for m, sub in enumerate(sub_ids[n]):
                if n % 100 != 7:
                    yield (me, sub, sid, day(n, m))
                if n % 2 == 0:
                    yield (other, sub, sid, day(n, m))

    def assignment_rows() -> Iterator[tuple[Any, ...]]:
        for n, sid in enumerate(ids):
            if n % 100 == 3:
                yield (sid, me, day(n))
            if n % 10 == 0:
                yield (sid, other, day(n))

    return {
        "sources": source_rows(),
        "submissions": submission_rows(),
        "downloads": download_rows(),
        "assignments": assignment_rows(),
    }


def batches(rows: Iterable[tuple[Any, ...]], size: int = 10_000) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def load(app, sources: int, per_source: int, me: str, other: str) -> None:  # type: ignore[no-untyped-def]
    """Bulk-load the rows: COPY on PostgreSQL, executemany on SQLite."""
    engine = db.engine_of(app)
    tables = rows_of(sources, per_source, me, other)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for table, rows in tables.items():
            columns = COLUMNS[table]
            if engine.dialect.name == "postgresql":
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" for _ in columns)
                statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
                for batch in batches(rows):
                    cursor.executemany(statement, batch)
        raw.commit()
    finally:
        raw.close()
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")


def newest_first(app) -> list[tuple[datetime.date, str]]:  # type: ignore[no-untyped-def]
    """Every source's (created, id), in the order of the sources list."""
    with db.engine_of(app).connect() as conn:
        return [
            (r[0], r[1])
            for r in conn.execute(
                select(Source.created, Source.id).order_by(Source.created.desc(), Source.id.desc())
            )
        ]


def p95(client, path: str, n: int, headers: dict[str, str] | None = None) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(n):
        t = time.perf_counter()
        response = client.get(path, headers=headers)
        times.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return statistics.quantiles(times, n=20)[18], statistics.median(times)


class Statements:
    """Counts the SQL statements an engine runs."""

    def __init__(self, engine) -> None:  # type: ignore[no-untyped-def]
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: object) -> None:
        self.count += 1


def bench_lists(name: str, url: str, data_dir: Path, args: argparse.Namespace) -> None:
    keys = org_keys.__wrapped__()  # type: ignore[attr-defined]
    from tests.server.conftest import make_app

    app = make_app(data_dir, url, keys.org)
    with app.app_context():
        keyset.install(db.session(), keys.signed(1), keys.org.public.public_key)
    staff = make_staff(app, "bench")
    make_staff(app, "other")
    with app.app_context():
        ids = dict(db.session().execute(select(Account.username, Account.id)).all())
        account = db.session().get(Account, ids["bench"])
        assert account is not None
        token = accounts.new_token(db.session(), account, "bench")
    t = time.perf_counter()
    load(app, args.sources, args.per_source, ids["bench"], ids["other"])
    order = newest_first(app)
    measured = order[0][1]  # the newest source: its blobs are written, its page read
    store = app.extensions["tipline.blobs"]
    envelope = sealed_submission([keys.alice.public.public_key], "x", {}, bytes(32))
    with db.engine_of(app).connect() as conn:
        for (sub,) in conn.exec_driver_sql(
            f"SELECT id FROM submissions WHERE source_id = '{measured}'"
        ):
            store.write("submissions", sub, lambda f: f.write(envelope))
    print(
        f"{name}: loaded {args.sources} sources, {args.sources * args.per_source} submissions "
        f"in {time.perf_counter() - t:.1f} s"
    )
    client = app.test_client()
    staff_login(app, client, staff)
    deep = "/journalist/"
    for _ in range(20):
        found = re.search(r'rel="next" href="([^"]+)"', client.get(deep).text)
        if not found:
            break
        deep = found.group(1).replace("&amp;", "&")
    middle_day, middle_id = order[len(order) // 2]
    middle = f"{middle_day.isoformat()}.{middle_id}"
    api = {"Authorization": f"Bearer {token}"}
    pages: Sequence[tuple[str, str, dict[str, str] | None]] = [
        ("sources, first page", "/journalist/", None),
        ("sources, page 21", deep, None),
        ("sources, middle page", f"/journalist/?after={middle}", None),
        ("sources assigned to me", "/journalist/?assigned=1", None),
        ("sources new for me", "/journalist/?new=1", None),
        ("one source's page", f"/journalist/sources/{measured}", None),
        ("API sources, first page", "/api/journalist/sources", api),
        ("API sources, middle page", f"/api/journalist/sources?after={middle}", api),
        ("API sources ?assigned=me", "/api/journalist/sources?assigned=me", api),
        ("API sources ?new=me", "/api/journalist/sources?new=me", api),
        ("API one source's submissions", f"/api/journalist/sources/{measured}/submissions", api),
    ]
    base, base_median = p95(client, "/journalist/login", args.requests)
    print(f"{name}: baseline (login page, no database) p95 {base:.1f} ms, median {base_median:.1f}")
    statements = Statements(db.engine_of(app))
    for label, path, headers in pages:
        statements.count = 0
        client.get(path, headers=headers)
        queries = statements.count
        value, median = p95(client, path, args.requests, headers)
        verdict = "ok" if value < GOAL_MS else "OVER GOAL"
        print(
            f"{name}: {label}: p95 {value:.1f} ms = {value / GOAL_MS:.2f} x the "
            f"{GOAL_MS:.0f} ms goal ({verdict}), {value / base:.1f} x baseline, "
            f"{queries} SQL statements; median {median:.1f} ms"
        )
    db.engine_of(app).dispose()


def bench_export() -> None:
    """Stream a 1 GiB export bundle from a real gunicorn worker (deploy/gunicorn.conf.py)
    through the token API, and read that worker's resident memory before and at its peak."""
    import http.client
    import json

    import pyotp

    from bench.serving import demo_keys, gunicorn, peak_rss, tipline_env, worker_pids
    from tipline.server import create_app

    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        data = Path(tmp) / "data"
        org, _, _ = demo_keys(data)
        env = tipline_env(data, org)
        app = create_app({"DATA_DIR": str(data), "ORG_PUBLIC_KEY": env["TIPLINE_ORG_PUBLIC_KEY"]})
        store = app.extensions["tipline.blobs"]
        ids = []
        with app.app_context():
            account = accounts.create(db.session(), "exporter", accounts.generate_passphrase())
            account.totp_secret = pyotp.random_base32(32)
            db.session().commit()
            token = accounts.new_token(db.session(), account, "bench")
            source = Source(
                id=new_id(),
                designation="big one",
                token_hash=secrets.token_bytes(32),
                reply_public_key=bytes(32),
            )
            db.session().add(source)
            for _ in range(8):
                sid = new_id()
                with open(store.path("submissions", sid), "wb") as f:
                    f.truncate(128 << 20)  # sparse: the disk is not what is measured
                db.session().add(Submission(id=sid, source_id=source.id, size=128 << 20))
                ids.append(sid)
            db.session().commit()
        db.engine_of(app).dispose()
        with gunicorn("tipline.server.wsgi:app", env, 1) as (port, master):
            (worker,) = worker_pids(master.pid)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            conn.request(
                "GET", "/api/journalist/sources", headers={"Authorization": f"Bearer {token}"}
            )
            assert conn.getresponse().read()
            before = peak_rss(worker)  # warmed up: imports, a first request, the database
            conn.request(
                "POST",
                "/api/journalist/export",
                body=json.dumps({"ids": ids}),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            assert response.status == 200, response.read()[:200]
            total = 0
            while chunk := response.read(1 << 20):
                total += len(chunk)
            peak = peak_rss(worker)
    assert total > 1 << 30
    mib = 1 << 20
    print(
        f"export through gunicorn: {total / (1 << 30):.3f} GiB bundle streamed; worker peak RSS "
        f"{before / mib:.1f} MiB before, {peak / mib:.1f} MiB after = {peak / mib / 100:.2f} x "
        f"the 100 MiB goal; growth while exporting {(peak - before) / mib:.1f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument("--per-source", type=int, default=10)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--postgres-only", action="store_true", help="skip SQLite")
    parser.add_argument("--no-export", action="store_true", help="skip the 1 GiB export")
    args = parser.parse_args()
    import nacl.pwhash

    accounts.OPSLIMIT, accounts.MEMLIMIT = (
        nacl.pwhash.argon2id.OPSLIMIT_MIN,
        nacl.pwhash.argon2id.MEMLIMIT_MIN,
    )
    if not args.postgres_only:
        with tempfile.TemporaryDirectory() as tmp:
            bench_lists("sqlite", f"sqlite:///{tmp}/bench.db", Path(tmp) / "sqlite", args)
    name = f"tipline_bench_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            from sqlalchemy.engine import make_url

            url = make_url(_sqlalchemy_url(POSTGRES_URL)).set(database=name)
            with tempfile.TemporaryDirectory() as tmp:
                bench_lists("postgres", url.render_as_string(hide_password=False), Path(tmp), args)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if not args.no_export:
        bench_export()


if __name__ == "__main__":
    main()
