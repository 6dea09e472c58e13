"""Small submissions per second through gunicorn (2 workers), against a bare Flask app under the
same gunicorn that only writes each request body to a file and fsyncs it.

    python bench/submit.py [--seconds 10] [--clients 4]

Both get the same client (threads on loopback, a new connection per request, as Tor gives).
The tip line handles each as the no-JS form does: parse, seal to the journalist key, write,
fsync, rename, fsync the folder, commit a row. Prints both rates and the ratio (target >= 0.7).
Also prints the browser path's rate (create upload + one chunk + finish: three requests).
"""

from __future__ import annotations

import argparse
import io
import json
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from serving import BASELINE_APP, ROOT, Session, demo_keys, gunicorn

from tipline.crypto import format as fmt
from tipline.crypto.codename import derive, generate
from tipline.crypto.encoding import b64e
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


def measure(
    one: Callable[[Session], None], port: int, clients: int, seconds: float, fresh: bool = True
) -> float:
    """Runs of ``one`` per second over ``seconds`` with ``clients`` threads."""
    counts = [0] * clients
    stop = time.monotonic() + seconds

    def loop(i: int) -> None:
        session = Session(port) if fresh else Bare(port)
        one(session)  # warm up (and log in, for the tip line)
        while time.monotonic() < stop:
            one(session)
            counts[i] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - start)


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
            derived = derive(generate(load_wordlist()))
            status, _ = session.request(
                "POST",
                "/api/source/register",
                json.dumps(
                    {
                        "login_token": b64e(derived.login_token),
                        "reply_public_key": b64e(derived.reply_public_key),
                    }
                ),
                {"Content-Type": "application/json"},
            )
            assert status == 201
            session.refresh()
            session.registered = True  # type: ignore[attr-defined]
        out = io.BytesIO()
        seal(out, keys, Inner("submission", "browser", MESSAGE, reply_key))
        envelope = out.getvalue()
        size = fmt.header_size_from_prefix(envelope[:11])
        status, data = session.request(
            "POST",
            "/api/source/uploads",
            json.dumps(
                {"manifest_version": 1, "header": b64e(envelope[:size]), "size": len(envelope)}
            ),
            {"Content-Type": "application/json"},
        )
        assert status == 201, data
        upload_id = json.loads(data)["id"]
        status, data = session.request(
            "PUT",
            f"/api/source/uploads/{upload_id}?offset={size}",
            envelope[size:],
            {"Content-Type": "application/octet-stream"},
        )
        assert status == 200, data
        status, data = session.request("POST", f"/api/source/uploads/{upload_id}/finish")
        assert status == 201, data

    return one


def main() -> None:
    """Run both servers in turn and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        base = Path(tmp)
        (base / "baseline").mkdir()
        (base / "baseline_app.py").write_text(BASELINE_APP)
        env = {"BENCH_BASELINE_DIR": str(base / "baseline"), "PYTHONPATH": str(base)}
        with gunicorn("baseline_app:app", env, 2) as (port, _):
            baseline = measure(baseline_submission, port, args.clients, args.seconds, False)
        org, journalist, _ = demo_keys(base / "data")
        env = {
            "TIPLINE_DATA_DIR": str(base / "data"),
            "TIPLINE_ORG_PUBLIC_KEY": b64e(org.public.public_key),
            "TIPLINE_RATELIMIT_ENABLED": "false",
            "TIPLINE_MIN_FREE_BYTES": "0",
        }
        with gunicorn("tipline.server.wsgi:app", env, 2) as (port, _):
            form = measure(form_submission, port, args.clients, args.seconds)
            reply_key = derive(generate(load_wordlist())).reply_public_key
            api = measure(
                browser_submission([journalist.public.public_key], reply_key),
                port,
                args.clients,
                args.seconds,
            )
    print(f"baseline (Flask writes the body, fsync):  {baseline:8.1f} requests/s")
    print(f"tip line, no-JS form (seal on arrival):   {form:8.1f} submissions/s")
    print(f"tip line, browser path (3 requests each): {api:8.1f} submissions/s")
    print(f"ratio no-JS form / baseline: {form / baseline:.2f}  (target >= 0.7)")


if __name__ == "__main__":
    main()
