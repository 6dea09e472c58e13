"""Small submissions per second through gunicorn, against a bare Flask app under the same
gunicorn that only writes each request body to a file and fsyncs it.

    python bench/submit.py [--seconds 10] [--clients 16] [--slices 5]

Both servers run side by side with the deployed settings (deploy/gunicorn.conf.py: 2 gthread
workers of 8 threads) and are measured in alternating slices, so other work on a shared machine
weighs on both alike. Both get the same client: threads on loopback, a new connection per
request, as Tor gives; by default as many as the server has threads, so both run fully loaded. The
tip line handles each as the no-JS form does: parse, seal to the journalist key, write, fsync,
rename, fsync the folder, commit a row (SQLite, WAL, synchronous=FULL). Prints both rates and
the ratio (target >= 0.7), the browser path's rate (create upload + one chunk + finish: three
requests), and what bounds the ratio: the server's CPU time per request, measured during each
run, and the cost of each durable step on this disk.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from serving import BASELINE_APP, ROOT, Session, demo_keys, gunicorn, server_cpu, tipline_env
from sqlalchemy import insert

from tipline.crypto import format as fmt
from tipline.crypto.codename import derive, generate
from tipline.crypto.envelope import seal
from tipline.crypto.inner import Inner
from tipline.wordlist import load_wordlist

MESSAGE = "A short tip: the shipment leaves on Tuesday from the north gate. " * 8


def form_body(token: str) -> tuple[bytes, str]:
    """A multipart form like the no-JS page sends: token and message."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n',
        f'--{boundary}\r\nContent-Disposition: form-data; name="message"\r\n\r\n{MESSAGE}\r\n',
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename=""\r\n'
        "Content-Type: application/octet-stream\r\n\r\n\r\n",
        f"--{boundary}--\r\n",
    ]
    return "".join(parts).encode(), f"multipart/form-data; boundary={boundary}"


@dataclass
class Tally:
    """Runs done, time taken, and CPU spent by the server (all of gunicorn) and this client."""

    done: int = 0
    elapsed: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0

    def add(self, other: Tally) -> None:
        """Add another slice's figures to these."""
        self.done += other.done
        self.elapsed += other.elapsed
        self.server_cpu += other.server_cpu
        self.client_cpu += other.client_cpu

    @property
    def per_second(self) -> float:
        """Runs per second."""
        return self.done / self.elapsed if self.elapsed else 0.0

    def cpu_ms(self, seconds: float) -> float:
        """CPU milliseconds per run."""
        return 1000 * seconds / max(self.done, 1)


class Load:
    """``clients`` sessions on one server, each running ``one`` in a loop for a while."""

    def __init__(
        self, one: Callable[[Session], None], port: int, master: int, clients: int, fresh: bool
    ) -> None:
        self.one, self.master = one, master
        self.sessions = [Session(port) if fresh else Bare(port) for _ in range(clients)]
        for session in self.sessions:
            one(session)  # warm up (and log in, for the tip line), outside any timed window

    def run(self, seconds: float) -> Tally:
        """Run every session for ``seconds``; what was done and what it cost."""
        counts = [0] * len(self.sessions)
        stop = time.monotonic() + seconds

        def loop(i: int) -> None:
            while time.monotonic() < stop:
                self.one(self.sessions[i])
                counts[i] += 1

        threads = [threading.Thread(target=loop, args=(i,)) for i in range(len(self.sessions))]
        server_before, client_before = server_cpu(self.master), time.process_time()
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return Tally(
            sum(counts),
            time.monotonic() - start,
            server_cpu(self.master) - server_before,
            time.process_time() - client_before,
        )


def durable_steps(folder: Path, rounds: int = 200) -> dict[str, float]:
    """Milliseconds per durable step on this disk, as each server does it (one at a time)."""
    from tipline.server.blobs import BlobStore
    from tipline.server.db import make_engine
    from tipline.server.models import Base, Source, Submission, new_id

    body = b"x" * 1700  # about a small submission's envelope
    folder.mkdir()
    store = BlobStore(folder / "blobs", 0)
    engine = make_engine(f"sqlite:///{folder / 'probe.db'}")
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(Source).values(
                id="s", designation="probe", token_hash=bytes(32), reply_public_key=bytes(32)
            )
        )

    def baseline_write() -> None:
        with (folder / uuid.uuid4().hex).open("wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())

    def blob_write() -> None:
        store.write("submissions", new_id(), lambda out: out.write(body))

    def row_commit() -> None:
        with engine.begin() as conn:
            conn.execute(insert(Submission).values(id=new_id(), source_id="s", size=1))

    steps = {
        "baseline: write + fsync": baseline_write,
        "tip line: blob (temp, fsync, rename, fsync dir)": blob_write,
        "tip line: row commit (SQLite WAL, synchronous=FULL)": row_commit,
    }
    spent = dict.fromkeys(steps, 0.0)
    for _ in range(rounds):  # interleaved, so a busy moment on the disk hits all three
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            spent[name] += time.perf_counter() - start
    costs = {name: 1000 * total / rounds for name, total in spent.items()}
    engine.dispose()
    return costs


class Bare(Session):
    """The baseline has no pages, cookies or tokens."""

    def refresh(self) -> None:
        """Nothing to fetch."""


def baseline_submission(session: Session) -> None:
    body, content_type = form_body("x" * 91)  # a CSRF token's length
    status, _ = session.request("POST", "/submit", body, {"Content-Type": content_type})
    assert status == 200


def form_submission(session: Session) -> None:
    body, content_type = form_body(session.token)
    status, page = session.request("POST", "/submit", body, {"Content-Type": content_type})
    assert status == 200, (status, re.findall(rb"<p[^>]*>([^<]*)</p>", page)[:3])
    # The first submission logs in (a new session): take the token from the page, as a browser.
    found = re.search(rb'name="csrf-token" content="([^"]+)"', page)
    assert found
    session.token = found.group(1).decode()


def browser_submission(keys: list[bytes], reply_key: bytes) -> Callable[[Session], None]:
    def one(session: Session) -> None:
        if not getattr(session, "registered", False):
            session.register()
            session.registered = True  # type: ignore[attr-defined]
        out = io.BytesIO()
        seal(out, keys, Inner("submission", "browser", MESSAGE, reply_key))
        envelope = out.getvalue()
        size = fmt.header_size_from_prefix(envelope[:11])
        upload_id = session.create_upload(envelope[:size], len(envelope))
        session.put_chunk(upload_id, size, envelope[size:])
        session.finish_upload(upload_id)

    return one


def main() -> None:
    """Run both servers side by side, measure them in alternating slices, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="measured time per kind")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--slices", type=int, default=5, help="alternations of the kinds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        base = Path(tmp)
        (base / "baseline").mkdir()
        (base / "baseline_app.py").write_text(BASELINE_APP)
        org, journalist, _ = demo_keys(base / "data")
        env = tipline_env(base / "data", org)
        # The deployed gunicorn settings check the tip line's configuration before forking,
        # so the baseline gets the same environment (and ignores it).
        baseline_env = {**env, "BENCH_BASELINE_DIR": str(base / "baseline"), "PYTHONPATH": tmp}
        reply_key = derive(generate(load_wordlist())).reply_public_key
        browser = browser_submission([journalist.public.public_key], reply_key)
        with (
            gunicorn("baseline_app:app", baseline_env, 2) as (bare_port, bare),
            gunicorn("tipline.server.wsgi:app", env, 2) as (port, tipline),
        ):
            loads = {
                "baseline": Load(baseline_submission, bare_port, bare.pid, args.clients, False),
                "form": Load(form_submission, port, tipline.pid, args.clients, True),
                "browser": Load(browser, port, tipline.pid, args.clients, True),
            }
            # Other work on the machine comes and goes: alternating short slices lets it weigh
            # on every kind alike, which one long run per kind does not.
            tallies = {name: Tally() for name in loads}
            for _ in range(args.slices):
                for name, load in loads.items():
                    tallies[name].add(load.run(args.seconds / args.slices))
        steps = durable_steps(base / "probe")
    baseline, form, api = tallies["baseline"], tallies["form"], tallies["browser"]
    print(f"baseline (Flask writes the body, fsync):  {baseline.per_second:8.1f} requests/s")
    print(f"tip line, no-JS form (seal on arrival):   {form.per_second:8.1f} submissions/s")
    print(f"tip line, browser path (3 requests each): {api.per_second:8.1f} submissions/s")
    ratio = form.per_second / baseline.per_second
    print(f"ratio no-JS form / baseline: {ratio:.2f}  (target >= 0.7)")
    print("CPU per submission (server = gunicorn and its workers; client = this process):")
    for name, tally in (("baseline", baseline), ("no-JS form", form), ("browser path", api)):
        server, client = tally.cpu_ms(tally.server_cpu), tally.cpu_ms(tally.client_cpu)
        print(f"  {name:13} server {server:6.2f} ms   client {client:5.2f} ms")
    bound = (baseline.cpu_ms(baseline.server_cpu) + baseline.cpu_ms(baseline.client_cpu)) / (
        form.cpu_ms(form.server_cpu) + form.cpu_ms(form.client_cpu)
    )
    print(f"  ratio if both were CPU-bound on the same cores: {bound:.2f}")
    print(
        "fsyncs per submission: baseline 1; no-JS form 3 (blob, its folder, the SQLite WAL);"
        " browser path 6 over its 3 requests. Each on this disk, one at a time (ms):"
    )
    for name, cost in steps.items():
        print(f"  {name:52} {cost:6.2f}")


if __name__ == "__main__":
    main()
