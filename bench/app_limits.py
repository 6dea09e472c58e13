"""The app limits' cost per request (tipline/server/limits.py), target under 0.3 ms.

Runs a throwaway redis-server on a unix socket (as deployed) and, in this process, the same
request against three apps: limits off (the baseline), counted in memory, counted in Redis.
The request is a refused upload creation, which checks the capacity (``room``) and nothing else
expensive. Then the pair a stored tip costs (``room`` and ``spend``) is timed on its own.

    .venv/bin/python bench/app_limits.py [REQUESTS]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from flask.testing import FlaskClient

ROOT = Path(__file__).resolve().parents[1]
# This file's own folder first on the path would make "limits" this file, not the package.
sys.path[0] = str(ROOT)

from tests.redis_server import redis_server  # noqa: E402
from tipline.crypto import keys  # noqa: E402
from tipline.crypto.encoding import b64e  # noqa: E402
from tipline.server import create_app  # noqa: E402
from tipline.server.limits import Limits  # noqa: E402


def client(storage: str | None, folder: Path, org: bytes) -> FlaskClient:
    """A test client of an app with limits off (None) or counted in ``storage``."""
    app = create_app(
        {
            "DATA_DIR": str(folder / (storage or "off").split(":")[0]),
            "ORG_PUBLIC_KEY": b64e(org),
            "MIN_FREE_BYTES": 0,
            "RATELIMIT_ENABLED": storage is not None,
            "RATELIMIT_SUBMIT": "1000000 per minute",
            "LIMITS_STORAGE": storage or "memory://",
            "WTF_CSRF_ENABLED": False,
        }
    )
    made = app.test_client()
    for _ in range(200):  # warm up
        made.post("/api/source/uploads", json={})
    return made


def per_request(clients: list[FlaskClient], count: int) -> list[float]:
    """Seconds per refused upload creation for each client: the best of 7 rounds, the
    clients taking turns in each round so that a busy moment of the machine hits them alike."""
    best = [float("inf")] * len(clients)
    for _ in range(7):
        for i, each in enumerate(clients):
            start = time.perf_counter()
            for _ in range(count):
                assert each.post("/api/source/uploads", json={}).status_code == 401
            best[i] = min(best[i], (time.perf_counter() - start) / count)
    return best


def pair(uri: str, count: int) -> float:
    """Seconds for one ``room`` and one ``spend`` (what a stored tip costs)."""
    limits = Limits(uri, {"submission": "100000000 per minute"})
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(count):
            limits.room("submission")
            limits.spend("submission")
        best = min(best, (time.perf_counter() - start) / count)
    return best


def main() -> None:
    """Print the figures."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    org = keys.OrgSecret.generate().public.public_key
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with redis_server(folder / "redis") as uri:
            clients = [client(storage, folder, org) for storage in (None, "memory://", uri)]
            off, memory, shared = per_request(clients, count)
            both = pair(uri, count)
    print(f"requests per setting: {count} (best of 7 rounds)")
    print(f"limits off       {off * 1e3:7.3f} ms/request")
    print(f"memory://        {memory * 1e3:7.3f} ms/request  ratio {memory / off:.3f}")
    print(f"redis+unix://    {shared * 1e3:7.3f} ms/request  ratio {shared / off:.3f}")
    print(f"limiter cost (redis, room only): {(shared - off) * 1e3:.3f} ms/request")
    print(f"a stored tip's room+spend (redis): {both * 1e3:.3f} ms   target < 0.3 ms")


if __name__ == "__main__":
    main()
