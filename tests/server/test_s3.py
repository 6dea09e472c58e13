"""The blob store on S3 (tipline/server/s3store.py) against a real S3 server: SeaweedFS, started
once for the session (tests/s3_server.py). The blob-store basics run on both backends; then two
app servers sharing one database, one bucket and one Redis; then the bucket going away
mid-upload.
"""

from __future__ import annotations

import io
import secrets
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from tipline import bundle
from tipline.server import db, health, keyset, sweeper
from tipline.server.blobs import BlobStore, hour_start
from tipline.server.models import Submission, Upload, new_id
from tipline.server.s3store import S3BlobStore

from ..s3_server import Seaweed
from .conftest import Keys, make_app, make_staff, new_token, staff_login
from .test_api import Browser, _count, _envelope
from .test_limits import redis_uri  # noqa: F401  (a fixture)

pytestmark = pytest.mark.slow
# Each chunk on S3 is one multipart part: at least 5 MiB but the last (s3store.py).
PART = 5 << 20


def _s3_store(seaweed: Seaweed, root: Path) -> S3BlobStore:
    settings = seaweed.settings(seaweed.new_bucket())
    return S3BlobStore(
        root,
        0,
        endpoint=settings["S3_ENDPOINT"],
        bucket=settings["S3_BUCKET"],
        access_key=settings["S3_ACCESS_KEY"],
        secret_key=settings["S3_SECRET_KEY"],
        part_size=PART,
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore | S3BlobStore:
    if request.param == "local":
        return BlobStore(tmp_path, 0)
    return _s3_store(request.getfixturevalue("seaweed"), tmp_path)


def _keys(store: BlobStore | S3BlobStore, kind: str, blob_id: str) -> list[str]:
    """Where a blob is, named alike for both backends (pending/<kind>/<id> or <kind>/<id>)."""
    if isinstance(store, BlobStore):
        places = [store.pending_path(kind, blob_id), store.published_path(kind, blob_id)]
        return [str(p.relative_to(store.root)) for p in places if p.exists()]
    found = []
    for key in (store.pending_key(kind, blob_id), store.published_key(kind, blob_id)):
        if store._head(key) is not None:
            found.append(key)
    return found


def test_write_read_delete(store: BlobStore | S3BlobStore) -> None:
    blob_id = new_id()
    assert store.write("submissions", blob_id, lambda f: f.write(b"ciphertext")) == 10
    with store.open("submissions", blob_id) as f:
        assert f.read() == b"ciphertext"
    assert list(store.tmp.iterdir()) == []
    assert _keys(store, "submissions", blob_id) == [f"pending/submissions/{blob_id}"]
    assert [i for i, _ in store.ids("submissions")] == [blob_id]
    with pytest.raises(FileExistsError):
        store.write("submissions", blob_id, lambda f: f.write(b"again"))
    store.delete("submissions", blob_id)
    store.delete("submissions", blob_id)  # twice is fine
    assert not store.exists("submissions", blob_id)
    assert _keys(store, "submissions", blob_id) == []
    with pytest.raises(FileNotFoundError):
        store.open("submissions", blob_id)


def test_a_failed_write_leaves_nothing(store: BlobStore | S3BlobStore) -> None:
    blob_id = new_id()

    def fail(f: BinaryIO) -> None:
        f.write(b"half")
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        store.write("submissions", blob_id, fail)
    assert not store.exists("submissions", blob_id)
    assert list(store.tmp.iterdir()) == []


@pytest.mark.parametrize("bad", ["../../etc/passwd", "ABC", "0" * 31, "0" * 32 + "/x"])
def test_ids_cannot_escape(store: BlobStore | S3BlobStore, bad: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        store.exists("submissions", bad)
    with pytest.raises(ValueError, match="not a"):
        store.open("submissions", bad)
    with pytest.raises(ValueError, match="not a"):
        store.exists("../x", new_id())


def test_publication_waits_for_the_hour(store: BlobStore | S3BlobStore) -> None:
    """A new blob stays pending in its hour and is published by the first run of a later one
    (the object's time then says when a publication ran, not when the tip came)."""
    blob_id = new_id()
    store.write("replies", blob_id, lambda f: f.write(b"reply"))
    assert store.publish() == 0  # control: this hour's blob is not moved
    assert _keys(store, "replies", blob_id) == [f"pending/replies/{blob_id}"]
    assert store.publish(now=hour_start() + 3600) == 1
    assert _keys(store, "replies", blob_id) == [f"replies/{blob_id}"]
    with store.open("replies", blob_id) as f:
        assert f.read() == b"reply"


# -- two app servers -----------------------------------------------------------------------------


def _pair(
    tmp_path: Path, seaweed: Seaweed, org_keys: Keys, limits: str, **extra: Any
) -> tuple[Flask, Flask]:
    """Two apps: their own data folders, one SQLite database, one bucket, one Redis."""
    shared = {
        **seaweed.settings(seaweed.new_bucket()),
        "SECRET_KEY": secrets.token_urlsafe(48),
        "LIMITS_STORAGE": limits,
        "MAX_CHUNK_SIZE": PART,
        **extra,
    }
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    a = make_app(tmp_path / "a", url, org_keys.org, **shared)
    b = make_app(tmp_path / "b", url, org_keys.org, **shared)
    with a.app_context():
        keyset.install(db.session(), org_keys.signed(1), org_keys.org.public.public_key)
    return a, b


def _move(browser: Browser, to: FlaskClient, app: Flask) -> None:
    """The browser's next request goes to another app server (Onionbalance picks one)."""
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = browser.client.get_cookie(name)
    assert cookie is not None
    to.set_cookie(name, cookie.value)
    browser.client = to


def _export(app: Flask, ids: list[str]) -> list[tuple[str, bytes]]:
    client = app.test_client()
    staff_login(app, client, make_staff(app, f"j{secrets.token_hex(3)}"))
    export = client.post(
        "/api/journalist/export",
        json={"ids": ids},
        headers={"Authorization": f"Bearer {new_token(client)}"},
    )
    assert export.status_code == 200, export.text
    reader = bundle.BundleReader(io.BytesIO(export.get_data()), bundle.KIND_EXPORT)
    return [(e.item.id, e.read()) for e in reader]


def test_an_upload_crosses_app_servers(
    tmp_path: Path,
    seaweed: Seaweed,
    org_keys: Keys,
    redis_uri: str,  # noqa: F811
) -> None:
    """Chunk 1 goes to A, the rest to B, which finishes it; the export on B has the tip sent
    through A, byte for byte. Controls: B refuses a chunk at a stale offset (it sees what A
    stored), and a local-folder pair cannot do the same (B has no partial file)."""
    a, b = _pair(tmp_path, seaweed, org_keys, redis_uri)
    browser = Browser(a.test_client(), org_keys.alice.public.public_key)
    envelope = _envelope(org_keys, browser, "across", **{"x.bin": secrets.token_bytes(6_000_000)})
    created = browser.create(envelope)
    assert created.status_code == 201, created.text
    upload_id, offset = created.json["id"], created.json["received"]
    first = browser.put(upload_id, offset, envelope[offset : offset + PART])
    assert first.status_code == 200 and first.json["received"] == offset + PART
    _move(browser, b.test_client(), b)
    stale = browser.put(upload_id, offset, envelope[offset : offset + PART])
    assert stale.status_code == 409 and stale.json["received"] == offset + PART
    rest = browser.put(upload_id, offset + PART, envelope[offset + PART :])
    assert rest.status_code == 200 and rest.json["received"] == len(envelope)
    done = browser.finish(upload_id)
    assert done.status_code == 201, done.text
    assert _count(b, Upload) == 0 and _count(b, Submission) == 1
    assert _export(b, [upload_id]) == [(upload_id, envelope)]
    store: S3BlobStore = b.extensions["tipline.blobs"]
    assert list(store.upload_ids()) == []  # the chunks went with the commit
    # Control: with local folders, the same walk fails on B (it never saw the upload's bytes).
    local_db = f"sqlite:///{tmp_path / 'local.db'}"
    la, lb = (make_app(tmp_path / n, local_db, org_keys.org, SECRET_KEY="k" * 48) for n in "xy")
    with la.app_context():
        keyset.install(db.session(), org_keys.signed(1), org_keys.org.public.public_key)
    local = Browser(la.test_client(), org_keys.alice.public.public_key)
    created = local.create(envelope)
    upload_id, offset = created.json["id"], created.json["received"]
    assert local.put(upload_id, offset, envelope[offset : offset + 100_000]).status_code == 200
    _move(local, lb.test_client(), lb)
    assert local.put(upload_id, offset + 100_000, envelope[offset + 100_000 :]).status_code == 400


def test_a_limit_reached_through_one_server_holds_on_the_other(
    tmp_path: Path,
    seaweed: Seaweed,
    org_keys: Keys,
    redis_uri: str,  # noqa: F811
) -> None:
    """Two uploads started through A use up "2 per minute"; B refuses the third. Control: a
    pair with in-memory limits lets B start it."""

    def starts(limits: str, sub: str) -> list[int]:
        a, b = _pair(
            tmp_path / sub, seaweed, org_keys, limits,
            RATELIMIT_ENABLED=True, RATELIMIT_SUBMIT="2 per minute",
        )  # fmt: skip
        codes = []
        for app in (a, a, b):
            browser = Browser(app.test_client(), org_keys.alice.public.public_key)
            codes.append(browser.create(_envelope(org_keys, browser)).status_code)
        return codes

    assert starts(redis_uri, "redis") == [201, 201, 429]
    assert starts("memory://", "memory") == [201, 201, 201]


def _store_check(app: Flask) -> tuple[str, str]:
    with app.app_context():
        found = health.report(
            db.session(), app.extensions["tipline.blobs"], app.config["ORG_PUBLIC_KEY_BYTES"], 48
        )
    (check,) = [c for c in found.checks if c.name == "store"]
    return check.name, check.status.name.lower()


def test_the_store_stopped_mid_upload(
    tmp_path: Path,
    seaweed: Seaweed,
    org_keys: Keys,
    redis_uri: str,  # noqa: F811
) -> None:
    """S3 goes away after the first chunk: the next chunk and the finish get a clear 503 (not a
    500) and the health report says the store does not answer; once it is back the same upload
    resumes where it was and finishes, whole."""
    a, b = _pair(tmp_path, seaweed, org_keys, redis_uri)
    browser = Browser(a.test_client(), org_keys.alice.public.public_key)
    envelope = _envelope(org_keys, browser, "outage", **{"y.bin": secrets.token_bytes(6_000_000)})
    created = browser.create(envelope)
    upload_id, offset = created.json["id"], created.json["received"]
    assert browser.put(upload_id, offset, envelope[offset : offset + PART]).status_code == 200
    seaweed.stop()
    try:
        down = browser.put(upload_id, offset + PART, envelope[offset + PART :])
        assert down.status_code == 503, down.text
        assert "storage does not answer" in down.json["error"]
        assert browser.finish(upload_id).status_code == 503
        assert _store_check(a) == ("store", "fail")  # staff are told on the health page
    finally:
        seaweed.start()
    _move(browser, b.test_client(), b)
    deadline = time.monotonic() + 60
    while (where := browser.call("GET", f"/api/source/uploads/{upload_id}")).status_code != 200:
        assert time.monotonic() < deadline, where.text
        time.sleep(0.5)
    assert where.json["received"] == offset + PART  # nothing acknowledged was lost
    assert _store_check(b) == ("store", "ok")  # control: the same check, the store back
    assert browser.put(upload_id, offset + PART, envelope[offset + PART :]).status_code == 200
    assert browser.finish(upload_id).status_code == 201
    assert _export(b, [upload_id]) == [(upload_id, envelope)]


def test_the_sweep_on_s3(tmp_path: Path, seaweed: Seaweed, org_keys: Keys) -> None:
    """What a crash leaves in the bucket goes: a blob with no row, an upload's header and
    multipart upload with no row, a multipart upload begun by a request that died before its
    header was stored, an upload row with nothing stored. Control: a stored tip, an upload in
    progress and a blob younger than the grace period stay."""
    a, _b = _pair(tmp_path, seaweed, org_keys, "memory://")
    browser = Browser(a.test_client(), org_keys.alice.public.public_key)
    browser.register()
    (kept,) = [i for i, _ in a.extensions["tipline.blobs"].ids("submissions")]
    in_progress = browser.create(_envelope(org_keys, browser)).json["id"]
    store: S3BlobStore = a.extensions["tipline.blobs"]
    orphan, chunks = new_id(), new_id()
    store.write("submissions", orphan, lambda f: f.write(b"no row"))
    store.upload_start(chunks, b"no row either")
    headless = new_id()
    store.s3.create_multipart_upload(
        Bucket=store.bucket, Key=store.pending_key("submissions", headless)
    )
    with a.app_context():
        db.session().add(Upload(id=new_id(), size=1000, manifest_version=1))
        db.session().commit()
        young = sweeper.run(db.session(), store)  # every object is younger than the grace
        assert (young.blobs, young.parts, young.uploads) == (0, 0, 1)  # rows: no grace
        swept = sweeper.run(db.session(), store, grace=60, now=time.time() + 120)
    assert (swept.blobs, swept.parts, swept.uploads) == (1, 2, 0)
    assert [i for i, _ in store.ids("submissions")] == [kept]
    assert [i for i, _ in store.upload_ids()] == [in_progress]
    open_uploads = store.s3.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
    assert [u["Key"] for u in open_uploads] == [store.pending_key("submissions", in_progress)]
    assert _count(a, Upload) == 1


def test_s3_settings_are_checked_and_the_secret_never_shown(
    tmp_path: Path,
    seaweed: Seaweed,
    org_keys: Keys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each missing or malformed setting is named, never echoed; a wrong secret gives the
    source a 503 and the log no key. Control: the right settings store a tip."""
    from tipline.server.config import ConfigError

    good = seaweed.settings(seaweed.new_bucket())
    for key, value in (
        ("S3_SECRET_KEY", None),
        ("S3_ENDPOINT", "ftp://x"),
        ("S3_BUCKET", "Not_A_Bucket"),
        ("BLOB_STORE", "floppy"),
    ):
        with pytest.raises(ConfigError, match=f"TIPLINE_{key}") as raised:
            make_app(tmp_path / key, "sqlite://", org_keys.org, **{**good, key: value})
        assert good["S3_SECRET_KEY"] not in str(raised.value)
    wrong = "w" * 40
    for secret, expected in ((wrong, 503), (good["S3_SECRET_KEY"], 201)):
        app = make_app(
            tmp_path / secret[:4],
            f"sqlite:///{tmp_path / (secret[:4] + '.db')}",
            org_keys.org,
            **{**good, "S3_SECRET_KEY": secret},
        )
        with app.app_context():
            keyset.install(db.session(), org_keys.signed(1), org_keys.org.public.public_key)
        browser = Browser(app.test_client(), org_keys.alice.public.public_key)
        caplog.clear()
        answer = browser.create(_envelope(org_keys, browser))
        assert answer.status_code == expected, answer.text
        assert secret not in caplog.text and secret not in answer.text
        if expected == 503:
            assert "the S3 store refused: SignatureDoesNotMatch" in caplog.text


def test_a_part_sent_twice_and_parts_of_the_wrong_size(
    tmp_path: Path,
    seaweed: Seaweed,
    org_keys: Keys,
    redis_uri: str,  # noqa: F811
) -> None:
    """A chunk sent again to the other server (its answer was lost) is refused at a stale
    offset and the store still holds one part; a chunk that is not one part long (but is not
    the last) is refused, since S3 takes no small part but the last; a finish with the last
    part missing is refused. Controls: the right-sized chunks are taken and the tip is whole."""
    a, b = _pair(tmp_path, seaweed, org_keys, redis_uri)
    store: S3BlobStore = a.extensions["tipline.blobs"]
    browser = Browser(a.test_client(), org_keys.alice.public.public_key)
    envelope = _envelope(org_keys, browser, "twice", **{"w.bin": secrets.token_bytes(11_000_000)})
    created = browser.create(envelope)
    upload_id, offset = created.json["id"], created.json["received"]
    short = browser.put(upload_id, offset, envelope[offset : offset + PART - 1])
    assert short.status_code == 400 and "each part" in short.json["error"], short.text
    assert browser.put(upload_id, offset, envelope[offset : offset + PART]).status_code == 200
    _move(browser, b.test_client(), b)
    again = browser.put(upload_id, offset, envelope[offset : offset + PART])
    assert again.status_code == 409 and again.json["received"] == offset + PART
    state = store.upload_state(upload_id)
    assert state is not None and [p[:2] for p in store._parts(state) or []] == [(1, offset + PART)]
    second = browser.put(upload_id, offset + PART, envelope[offset + PART : offset + 2 * PART])
    assert second.status_code == 200
    assert browser.finish(upload_id).status_code == 400  # the last part is missing
    last = browser.put(upload_id, offset + 2 * PART, envelope[offset + 2 * PART :])
    assert last.status_code == 200 and last.json["received"] == len(envelope)
    assert browser.finish(upload_id).status_code == 201
    assert _export(b, [upload_id]) == [(upload_id, envelope)]
    assert list(store.upload_ids()) == []


def _sent_in_two_parts(a: Flask, org_keys: Keys) -> tuple[Browser, str, bytes]:
    """A first-time source's upload through A of a 6 MB tip, both parts sent, not finished."""
    browser = Browser(a.test_client(), org_keys.alice.public.public_key)
    envelope = _envelope(org_keys, browser, "raced", **{"z.bin": secrets.token_bytes(6_000_000)})
    created = browser.create(envelope)
    upload_id, offset = created.json["id"], created.json["received"]
    assert browser.put(upload_id, offset, envelope[offset : offset + PART]).status_code == 200
    assert browser.put(upload_id, offset + PART, envelope[offset + PART :]).status_code == 200
    return browser, upload_id, envelope


def _finish_from(app: Flask, browser: Browser, upload_id: str) -> Any:
    """The browser's finish of ``upload_id`` sent to ``app`` (its own client, same cookie)."""
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = browser.client.get_cookie(name)
    assert cookie is not None
    client = app.test_client()
    client.set_cookie(name, cookie.value)
    url = f"/api/source/uploads/{upload_id}/finish"
    return client.post(url, headers={"X-CSRFToken": browser.token})


def test_finishing_at_once_on_two_servers_and_a_refused_commit(
    tmp_path: Path,
    seaweed: Seaweed,
    org_keys: Keys,
    redis_uri: str,  # noqa: F811
) -> None:
    """A refused commit (a trigger) leaves the completed object and the upload row, so the
    upload is still whole; then four finishes at once, two on each server: one stores it (201),
    the others are told it is stored (200), and the object is the envelope. Control: the first
    finish did fail (500) and stored no row."""
    a, b = _pair(tmp_path, seaweed, org_keys, redis_uri)
    store: S3BlobStore = a.extensions["tipline.blobs"]
    browser, upload_id, envelope = _sent_in_two_parts(a, org_keys)
    with a.app_context():
        db.session().execute(
            text(
                "CREATE TRIGGER refuse BEFORE INSERT ON submissions "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )
        db.session().commit()
    assert browser.finish(upload_id).status_code == 500
    assert store.upload_received(upload_id) == len(envelope)
    assert _count(a, Submission) == 0 and _count(a, Upload) == 1
    with a.app_context():
        db.session().execute(text("DROP TRIGGER refuse"))
        db.session().commit()
    results: list[Any] = []

    def finish(app: Flask) -> None:
        results.append(_finish_from(app, browser, upload_id))

    threads = [threading.Thread(target=finish, args=(app,)) for app in (a, b, a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results) == [200, 200, 200, 201], [r.text for r in results]
    with store.open("submissions", upload_id) as f:
        assert f.read() == envelope
    assert _count(a, Submission) == 1 and _count(a, Upload) == 0


@pytest.mark.parametrize(
    "event", ["before-call.s3.GetObject", "after-call.s3.GetObject", "after-call.s3.ListParts"]
)
def test_another_server_finishes_while_this_one_reads(
    tmp_path: Path,
    seaweed: Seaweed,
    org_keys: Keys,
    redis_uri: str,  # noqa: F811
    event: str,
) -> None:
    """No lock spans servers: B's whole finish of a first-time source's upload runs while A's
    finish reads the upload's header (before the read is sent: A then meets no header; after
    it: A then meets the completed object and the source B made), or once A has listed the
    parts (A then meets the source B made). A must say "stored already" (200), not fail on the
    missing header or take the source for a codename taken by someone else and try to cancel
    an upload B had already stored: both answered 500 (seen in 2 of 3 runs of the
    four-finishes test above; the page's retry then got 200). Control: B's finish ran inside
    A's (201 first)."""
    a, b = _pair(tmp_path, seaweed, org_keys, redis_uri)
    store: S3BlobStore = a.extensions["tipline.blobs"]
    browser, upload_id, envelope = _sent_in_two_parts(a, org_keys)
    statuses: list[int] = []

    def finish(app: Flask) -> int:
        return int(_finish_from(app, browser, upload_id).status_code)

    def b_finishes(**_kwargs: Any) -> None:
        if not statuses:
            statuses.append(finish(b))

    store.s3.meta.events.register(event, b_finishes)
    statuses.append(finish(a))
    assert statuses == [201, 200]
    with store.open("submissions", upload_id) as f:
        assert f.read() == envelope
    assert _count(a, Submission) == 1 and _count(a, Upload) == 0


def test_a_finish_reads_the_header_object_once(
    tmp_path: Path, seaweed: Seaweed, org_keys: Keys
) -> None:
    """One finish asks the service for ``uploads/<id>/header`` once (a GET: its metadata and
    its bytes), and then deletes it after the commit; every request a's client makes for that
    key is counted (botocore's provide-client-params event names the operation and its Key).
    Control: before the state was passed through, the same finish read it three times (HEAD
    for what was received, GET for the bytes, HEAD again to complete the upload)."""
    a, _ = _pair(tmp_path, seaweed, org_keys, "memory://")
    store: S3BlobStore = a.extensions["tipline.blobs"]
    browser, upload_id, envelope = _sent_in_two_parts(a, org_keys)
    header = f"uploads/{upload_id}/header"
    asked: list[str] = []

    def count(params: dict[str, Any], model: Any, **_kwargs: Any) -> None:
        if params.get("Key") == header:
            asked.append(model.name)

    store.s3.meta.events.register("provide-client-params.s3", count)
    assert browser.finish(upload_id).status_code == 201
    assert asked == ["GetObject", "DeleteObject"], asked
    with store.open("submissions", upload_id) as f:
        assert f.read() == envelope


def test_the_store_failing_halfway_through_an_upload(tmp_path: Path, seaweed: Seaweed) -> None:
    """The service answers InternalError to the second part, then to the completion: each is a
    StoreUnavailableError (a 503), what was acknowledged stays acknowledged, nothing is at the
    blob's key, and sending again (the page retries) completes it whole with no byte read back.
    Controls: the failures were injected (the hooks ran) and the first part had been stored."""
    from botocore.exceptions import ClientError

    from tipline.server.blobs import StoreUnavailableError

    store = _s3_store(seaweed, tmp_path)
    upload_id = new_id()
    pieces = [b"h" * 100, secrets.token_bytes(PART), secrets.token_bytes(1_000_000)]
    size = sum(map(len, pieces))
    store.upload_start(upload_id, pieces[0])
    state = store.upload_state(upload_id)
    assert state is not None and state.part_size == PART

    def send(offset: int, data: bytes) -> None:
        def fill(out: BinaryIO) -> None:
            out.write(data)

        store.upload_part(state, offset, len(data), fill)

    send(100, pieces[1])
    calls: list[str] = []

    def fails(name: str) -> Any:
        def hook(params: dict[str, Any], **_kwargs: Any) -> None:
            calls.append(name)
            raise ClientError({"Error": {"Code": "InternalError"}}, name)

        return hook

    part_fails, complete_fails = fails("UploadPart"), fails("CompleteMultipartUpload")
    events = store.s3.meta.events
    events.register("provide-client-params.s3.UploadPart", part_fails)
    with pytest.raises(StoreUnavailableError):
        send(100 + PART, pieces[2])
    events.unregister("provide-client-params.s3.UploadPart", part_fails)
    assert store.upload_received(upload_id) == 100 + PART
    send(100 + PART, pieces[2])
    events.register("provide-client-params.s3.CompleteMultipartUpload", complete_fails)
    with pytest.raises(StoreUnavailableError):
        store.upload_compose(state, size)
    events.unregister("provide-client-params.s3.CompleteMultipartUpload", complete_fails)
    assert calls == ["UploadPart", "CompleteMultipartUpload"]
    assert not store.exists("submissions", upload_id)
    assert store.upload_received(upload_id) == size
    reads: list[str] = []
    events.register("provide-client-params.s3.GetObject", lambda params, **_: reads.append("x"))
    store.upload_compose(state, size)
    store.upload_compose(state, size)  # again (a finish retried): done already is fine
    assert reads == []
    with store.open("submissions", upload_id) as f:
        assert f.read() == b"".join(pieces)
    store.upload_discard(upload_id)
    assert store.upload_state(upload_id) is None and store.exists("submissions", upload_id)


def test_two_servers_publishing_at_once(tmp_path: Path, seaweed: Seaweed) -> None:
    """Every app server publishes on the hour: when B lists a pending blob that A publishes
    before B copies it, B's run goes on (it was published, not lost) and the blob is in place
    once. Control: B's copy did meet the missing object (the hook ran, A had moved it)."""
    settings = seaweed.settings(seaweed.new_bucket())

    def server(name: str) -> S3BlobStore:
        return S3BlobStore(
            tmp_path / name,
            0,
            endpoint=settings["S3_ENDPOINT"],
            bucket=settings["S3_BUCKET"],
            access_key=settings["S3_ACCESS_KEY"],
            secret_key=settings["S3_SECRET_KEY"],
        )

    a, b = server("a"), server("b")
    first, second = new_id(), new_id()
    for blob_id in (first, second):
        a.write("submissions", blob_id, lambda f: f.write(b"tip"))
    later = hour_start() + 3600
    raced: list[int] = []

    def a_first(**_kwargs: Any) -> None:
        if not raced:
            raced.append(a.publish(now=later))

    b.s3.meta.events.register("before-call.s3.CopyObject", a_first)
    b.publish(now=later)
    assert raced == [2]
    for blob_id in (first, second):
        assert _keys(b, "submissions", blob_id) == [f"submissions/{blob_id}"]
        with b.open("submissions", blob_id) as f:
            assert f.read() == b"tip"
