"""Two real app servers (``tipline-server serve``: gunicorn, each with its own data folder) on one
PostgreSQL, one Redis and one S3 bucket (SeaweedFS), as docs/DEPLOY.md "Blobs in S3" lays out:
a source's upload crosses them, a limit reached through A holds on B, B's export has what came
through A, killing A mid-upload loses nothing, and a manifest installed through A is in force on
B at once.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
import secrets
import signal
from pathlib import Path

import pytest

from tipline import bundle
from tipline.crypto import format as fmt
from tipline.crypto import keys, manifest
from tipline.crypto.codename import derive, generate
from tipline.crypto.encoding import b64e
from tipline.wordlist import load_wordlist

from ..s3_server import Seaweed
from .conftest import _truncate, sealed_submission
from .test_faults import Client, Server, Site, journalist_token, serving
from .test_limits import redis_uri  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
# On S3 each chunk is one multipart part: 5 MiB, but the last (s3store.py); tips of two parts.
PART = 5 << 20
BIG = 6_000_000


def _sign(org: keys.OrgSecret, version: int, who: keys.RecipientSecret, path: Path) -> Path:
    today = datetime.datetime.now(datetime.UTC).date()
    path.write_bytes(
        manifest.sign_manifest(org, version, [who.public], today, today + datetime.timedelta(30))
    )
    return path


def _site(base: Path, name: str, common: str, recipient: bytes) -> Site:
    data = base / name / "data"
    data.mkdir(parents=True)
    config = base / name / "tipline.toml"
    config.write_text(f'DATA_DIR = "{data}"\n' + common)
    config.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIPLINE_", "LISTEN_"))}
    env["TIPLINE_CONFIG_FILE"] = str(config)
    return Site(base / name, env, recipient)


def _start(
    client: Client, recipient: bytes, size: int = 300_000, version: int = 1
) -> tuple[str, bytes, int]:
    """A first-time source's browser starts an upload; its id, envelope and header size."""
    derived = derive(generate(load_wordlist()))
    envelope = sealed_submission(
        [recipient], "a tip", {"a.bin": secrets.token_bytes(size)}, derived.reply_public_key
    )
    head = fmt.header_size_from_prefix(envelope[:11])
    status, created = client.call(
        "POST",
        "/api/source/uploads",
        {
            "manifest_version": version,
            "header": b64e(envelope[:head]),
            "size": len(envelope),
            "login_token": b64e(derived.login_token),
            "reply_public_key": b64e(derived.reply_public_key),
        },
    )
    assert status == 201, created
    return created["id"], envelope, head


def _put(client: Client, upload_id: str, offset: int, data: bytes) -> tuple[int, object]:
    status, body = client.request(
        "PUT",
        f"/api/source/uploads/{upload_id}?offset={offset}",
        data,
        **{"Content-Type": "application/octet-stream"},
    )
    return status, body


def _moved(client: Client, server: Server) -> Client:
    """The same browser (cookie, token), its next request answered by another server."""
    return Client(server, client.cookie, client.token)


def _export(token: str, server: Server, ids: list[str]) -> dict[str, bytes]:
    """What a journalist's export through ``server`` holds (raw bytes, not Client's text)."""
    with contextlib.closing(server.conn()) as conn:
        conn.request(
            "POST",
            "/api/journalist/export",
            body=json.dumps({"ids": ids}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        reply = conn.getresponse()
        raw = reply.read()
    assert reply.status == 200, raw[:300]
    reader = bundle.BundleReader(io.BytesIO(raw), bundle.KIND_EXPORT)
    return {e.item.id: e.read() for e in reader}


def _kill(server: Server) -> None:
    """SIGKILL the whole server: gunicorn's arbiter (this process) and its workers."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == server.proc.pid:
                children.append(stat.parent.name)
    server.proc.kill()
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(child), signal.SIGKILL)
    server.proc.wait(30)


def test_two_app_servers(
    tmp_path: Path,
    seaweed: Seaweed,
    postgres_database: str,
    redis_uri: str,  # noqa: F811
) -> None:
    org = keys.OrgSecret.generate()
    alice, bob = keys.RecipientSecret.generate("Alice"), keys.RecipientSecret.generate("Bob")
    s3 = seaweed.settings(seaweed.new_bucket())
    common = (
        f'ORG_PUBLIC_KEY = "{b64e(org.public.public_key)}"\n'
        f'DATABASE_URL = "{postgres_database}"\n'
        f'SECRET_KEY = "{secrets.token_urlsafe(48)}"\n'
        f'LIMITS_STORAGE = "{redis_uri}"\n'
        'RATELIMIT_SUBMIT = "4 per minute"\n'
        "MIN_FREE_BYTES = 0\n"
        f"MAX_CHUNK_SIZE = {PART}\n" + "".join(f'{k} = "{v}"\n' for k, v in s3.items())
    )
    a = _site(tmp_path, "a", common, alice.public.public_key)
    b = _site(tmp_path, "b", common, alice.public.public_key)
    try:
        a.tool("db", "upgrade")
        a.tool("install-manifest", "--yes", str(_sign(org, 1, alice, tmp_path / "m1.json")))
        desk = journalist_token(b)
        with serving(a, None) as on_a, serving(b, None) as on_b:
            # 1. Chunk 1 through A, the rest and the finish through B.
            source = Client(on_a)
            source.start()
            upload_id, envelope, head = _start(source, alice.public.public_key, BIG)
            assert _put(source, upload_id, head, envelope[head : head + PART])[0] == 200
            source = _moved(source, on_b)
            status, said = source.request("GET", f"/api/source/uploads/{upload_id}")
            assert (status, said["received"]) == (200, head + PART)  # B sees A's chunk
            assert _put(source, upload_id, head + PART, envelope[head + PART :])[0] == 200
            status, done = source.call("POST", f"/api/source/uploads/{upload_id}/finish")
            assert status == 201, done
            # 2. The export on B has the tip sent (in part) through A, byte for byte.
            assert _export(desk, on_b, [upload_id]) == {upload_id: envelope}
            # 3. Kill A (SIGKILL, the whole gunicorn) mid-upload: B finishes it, nothing lost.
            other = Client(on_a)
            other.start()
            second, envelope2, head2 = _start(other, alice.public.public_key, BIG)
            assert _put(other, second, head2, envelope2[head2 : head2 + PART])[0] == 200
            _kill(on_a)
            other = _moved(other, on_b)
            status, said = other.request("GET", f"/api/source/uploads/{second}")
            assert (status, said["received"]) == (200, head2 + PART)
            assert _put(other, second, head2 + PART, envelope2[head2 + PART :])[0] == 200
            assert other.call("POST", f"/api/source/uploads/{second}/finish")[0] == 201
            assert _export(desk, on_b, [second]) == {second: envelope2}
            # 4. A manifest installed through A's tool is in force on B at once: an upload
            # sealed to version 1 is refused as stale (control: version 1 was taken above).
            a.tool("install-manifest", "--yes", str(_sign(org, 2, bob, tmp_path / "m2.json")))
            fourth = Client(on_b)
            fourth.start()
            fresh = {
                "login_token": b64e(secrets.token_bytes(32)),
                "reply_public_key": b64e(secrets.token_bytes(32)),
            }
            status, body = fourth.call(
                "POST", "/api/source/uploads", {"manifest_version": 1, **fresh}
            )
            assert status == 409, body
            # 5. The limit (4 started uploads a minute, counted in Redis): 2 were started
            # through A, 2 more go through B, and B refuses the fifth.
            _start(fourth, bob.public.public_key, 1000, version=2)
            _start(fourth, bob.public.public_key, 1000, version=2)
            status, body = fourth.call(
                "POST", "/api/source/uploads", {"manifest_version": 2, **fresh}
            )
            assert status == 429, body
    finally:
        _truncate(postgres_database)
