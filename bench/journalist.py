"""Journalist list pages at 10,000 sources and 100,000 submissions, on SQLite and PostgreSQL,
and the peak memory of exporting a 1 GiB bundle.

    python bench/journalist.py [--sources 10000] [--per-source 10] [--requests 60]

List pages: p95 latency (in-process Flask test client, logged in) of the first sources page, a
deep page (reached by walking the keyset cursor 20 pages in), and a source's page; against a
baseline measured in the same run, the login page (a template, no database). Goal: p95 < 200 ms.
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
from pathlib import Path

import psycopg
from sqlalchemy import insert

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
from tipline.server import db, keyset  # noqa: E402
from tipline.server.models import Source, Submission, new_id  # noqa: E402

GOAL_MS = 200.0


def populate(app, sources: int, per_source: int, alice_public: bytes) -> str:  # type: ignore[no-untyped-def]
    """Bulk rows (blobs only for the source whose page is measured); returns that source id."""
    start = datetime.date(2025, 1, 1)
    engine = db.engine_of(app)
    source_rows, sub_rows = [], []
    for n in range(sources):
        sid = new_id()
        source_rows.append(
            {
                "id": sid,
                "designation": f"source {n}",
                "token_hash": secrets.token_bytes(32),
                "reply_public_key": bytes(32),
                "created": start + datetime.timedelta(days=n % 365),
                "starred": False,
            }
        )
        for m in range(per_source):
            sub_rows.append(
                {
                    "id": new_id(),
                    "source_id": sid,
                    "size": 4096 + m,
                    "received": start + datetime.timedelta(days=(n + m) % 365),
                    "downloaded": m % 2 == 0,
                    "downloaded_on": None,
                }
            )
    with engine.begin() as conn:
        for i in range(0, len(source_rows), 5000):
            conn.execute(insert(Source), source_rows[i : i + 5000])
        for i in range(0, len(sub_rows), 5000):
            conn.execute(insert(Submission), sub_rows[i : i + 5000])
    measured = source_rows[0]["id"]
    store = app.extensions["tipline.blobs"]
    envelope = sealed_submission([alice_public], "x", {}, bytes(32))
    for row in sub_rows[:per_source]:
        store.write("submissions", row["id"], lambda f: f.write(envelope))
    return str(measured)


def p95(client, path: str, n: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(n):
        t = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return statistics.quantiles(times, n=20)[18]


def bench_lists(name: str, url: str, data_dir: Path, args: argparse.Namespace) -> None:
    keys = org_keys.__wrapped__()  # type: ignore[attr-defined]
    from tests.server.conftest import make_app

    app = make_app(data_dir, url, keys.org)
    with app.app_context():
        keyset.install(db.session(), keys.signed(1), keys.org.public.public_key)
    t = time.perf_counter()
    measured = populate(app, args.sources, args.per_source, keys.alice.public.public_key)
    print(
        f"{name}: loaded {args.sources} sources, {args.sources * args.per_source} submissions "
        f"in {time.perf_counter() - t:.1f} s"
    )
    client = app.test_client()
    staff_login(app, client, make_staff(app, "bench"))
    deep = "/journalist/"
    for _ in range(20):
        found = re.search(r'rel="next" href="([^"]+)"', client.get(deep).text)
        if not found:
            break
        deep = found.group(1).replace("&amp;", "&")
    base = p95(client, "/journalist/login", args.requests)
    print(f"{name}: baseline (login page, no database) p95 {base:.1f} ms")
    for label, path in [
        ("sources, first page", "/journalist/"),
        ("sources, page 21", deep),
        ("one source's page", f"/journalist/sources/{measured}"),
    ]:
        value = p95(client, path, args.requests)
        verdict = "ok" if value < GOAL_MS else "OVER GOAL"
        print(
            f"{name}: {label}: p95 {value:.1f} ms = {value / GOAL_MS:.2f} x the 200 ms goal "
            f"({verdict}), {value / base:.1f} x baseline"
        )
    db.engine_of(app).dispose()


def bench_export() -> None:
    """Stream a 1 GiB export bundle from a real gunicorn worker (deploy/gunicorn.conf.py)
    through the token API, and read that worker's resident memory before and at its peak."""
    import http.client
    import json

    import pyotp

    from bench.serving import demo_keys, gunicorn, peak_rss, tipline_env, worker_pids
    from tipline.server import accounts, create_app

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
    args = parser.parse_args()
    import nacl.pwhash

    from tipline.server import accounts

    accounts.OPSLIMIT, accounts.MEMLIMIT = (
        nacl.pwhash.argon2id.OPSLIMIT_MIN,
        nacl.pwhash.argon2id.MEMLIMIT_MIN,
    )
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
    bench_export()


if __name__ == "__main__":
    main()
