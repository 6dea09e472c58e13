"""Small submissions per second with one app server against two, the same worker count in all:
one gunicorn of 2 workers (the baseline) and two gunicorns of 1 worker each, every one sharing
one PostgreSQL database, one Redis (the app limits, on and counted there) and one S3 bucket (a
real SeaweedFS on loopback), as docs/DEPLOY.md "Scaling out" lays them out.

    python bench/scale.py [--seconds 20] [--clients 16] [--slices 5]

PostgreSQL is the one the tests use (TIPLINE_TEST_POSTGRES_URL, by default
postgresql://postgres@127.0.0.1:5432/postgres): a fresh database is made and dropped. Each
client is one session kept on one app server (Onionbalance keeps a circuit on one backend); with
two servers, half the clients go to each. The three gunicorns run side by side and the two
set-ups are measured in alternating slices, so other work on a shared machine weighs on both.
Both kinds of small submission are counted: the no-JS form (sealed on arrival, one request) and
the browser path (create, one chunk, finish: three requests, the chunk one part of a multipart
upload). Prints each rate, the ratio two servers / one (same cores: ~1.0 means the shared parts
do not hold the app servers back; on one machine it cannot show more), and CPU per submission.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from serving import ROOT, Session, gunicorn, server_cpu
from submit import Tally, browser_submission, form_submission

from tests.redis_server import redis_server
from tests.s3_server import Seaweed
from tipline.crypto import keys, manifest
from tipline.crypto.codename import derive, generate
from tipline.crypto.encoding import b64e
from tipline.wordlist import load_wordlist

POSTGRES_URL = os.environ.get(
    "TIPLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SEAWEED_SETTINGS = ("-master.volumeSizeLimitMB=1024", "-filer.maxMB=16")  # as bench/s3.py


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the tests' PostgreSQL, dropped at the end; its SQLAlchemy URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"tipline_bench_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", POSTGRES_URL)
            yield make_url(url).set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def install_keys(database: str, data_dir: Path) -> tuple[keys.OrgSecret, keys.RecipientSecret]:
    """An org key and a journalist, the schema made and the manifest installed in ``database``."""
    import datetime

    from tipline.server import create_app, db, keyset

    org = keys.OrgSecret.generate()
    journalist = keys.RecipientSecret.generate("Bench journalist")
    today = datetime.datetime.now(datetime.UTC).date()
    signed = manifest.sign_manifest(org, 1, [journalist.public], today, today)
    app = create_app(
        {
            "DATA_DIR": str(data_dir),
            "ORG_PUBLIC_KEY": b64e(org.public.public_key),
            "DATABASE_URL": database,
            "AUTO_MIGRATE": True,
        }
    )
    with app.app_context():
        keyset.install(db.session(), signed, org.public.public_key)
    db.engine_of(app).dispose()
    return org, journalist


class Spread:
    """``clients`` sessions spread over app servers (one server each), each running ``one``
    in a loop for a while; CPU is counted over every server's gunicorn."""

    def __init__(
        self, one: Callable[[Session], None], servers: list[tuple[int, int]], clients: int
    ) -> None:
        self.one, self.masters = one, [master for _, master in servers]
        self.sessions = [Session(servers[i % len(servers)][0]) for i in range(clients)]
        for session in self.sessions:
            one(session)  # warm up (and log in), outside any timed window

    def run(self, seconds: float) -> Tally:
        counts = [0] * len(self.sessions)
        stop = time.monotonic() + seconds

        def loop(i: int) -> None:
            while time.monotonic() < stop:
                self.one(self.sessions[i])
                counts[i] += 1

        threads = [threading.Thread(target=loop, args=(i,)) for i in range(len(self.sessions))]
        server_before = sum(server_cpu(m) for m in self.masters)
        client_before, start = time.process_time(), time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return Tally(
            sum(counts),
            time.monotonic() - start,
            sum(server_cpu(m) for m in self.masters) - server_before,
            time.process_time() - client_before,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20, help="measured time per kind")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--slices", type=int, default=5, help="alternations of the kinds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp, ExitStack() as stack:
        base = Path(tmp).resolve()
        seaweed = Seaweed(base / "seaweed", SEAWEED_SETTINGS)
        seaweed.start()
        stack.callback(seaweed.stop)
        redis = stack.enter_context(redis_server(base / "redis"))
        database = stack.enter_context(postgres_database())
        org, journalist = install_keys(database, base / "setup")
        shared = {
            "TIPLINE_ORG_PUBLIC_KEY": b64e(org.public.public_key),
            "TIPLINE_DATABASE_URL": database,
            "TIPLINE_SECRET_KEY": secrets.token_urlsafe(48),
            "TIPLINE_LIMITS_STORAGE": redis,
            "TIPLINE_RATELIMIT_ENABLED": "true",  # counted in Redis, never reached
            "TIPLINE_RATELIMIT_SUBMIT": "1000000 per minute",
            "TIPLINE_MIN_FREE_BYTES": "0",
            **{f"TIPLINE_{k}": v for k, v in seaweed.settings(seaweed.new_bucket()).items()},
        }

        def server(name: str, workers: int) -> tuple[int, int]:
            data = base / name
            data.mkdir()
            env = {**shared, "TIPLINE_DATA_DIR": str(data)}
            port, proc = stack.enter_context(gunicorn("tipline.server.wsgi:app", env, workers))
            return port, proc.pid

        one = [server("one", 2)]
        two = [server("two-a", 1), server("two-b", 1)]
        reply_key = derive(generate(load_wordlist())).reply_public_key
        browser = browser_submission([journalist.public.public_key], reply_key)
        loads = {
            ("form", "one"): Spread(form_submission, one, args.clients),
            ("form", "two"): Spread(form_submission, two, args.clients),
            ("browser", "one"): Spread(browser, one, args.clients),
            ("browser", "two"): Spread(browser, two, args.clients),
        }
        tallies = {name: Tally() for name in loads}
        for _ in range(args.slices):
            for name, load in loads.items():
                tallies[name].add(load.run(args.seconds / args.slices))
    print(
        f"small submissions/s, {args.clients} clients, PostgreSQL + Redis + S3 (SeaweedFS) "
        "shared, 2 workers in all:"
    )
    for kind, label in (("form", "no-JS form"), ("browser", "browser path (3 requests)")):
        single, double = tallies[(kind, "one")], tallies[(kind, "two")]
        print(
            f"  {label:26} one server (2 workers) {single.per_second:7.1f}   "
            f"two servers (1 worker each) {double.per_second:7.1f}   "
            f"ratio {double.per_second / single.per_second:.2f}"
        )
        print(
            f"  {'':26} server CPU per submission: one {single.cpu_ms(single.server_cpu):.1f} ms,"
            f" two {double.cpu_ms(double.server_cpu):.1f} ms"
        )


if __name__ == "__main__":
    main()
