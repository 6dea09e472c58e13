"""Storage under faults, in process (tests/server/test_faults.py kills a real gunicorn):
no precise time on disk, an idempotent finish that a refused commit cannot destroy, the
sweeper, the free-space floor, and a deleted source gone from SQLite's WAL.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from tipline.server import db, faults, sweeper
from tipline.server.blobs import BlobStore, day_start, hour_start
from tipline.server.models import Source, Submission, Upload
from tipline.server.transfer import delete_source

from .conftest import Keys
from .test_api import Browser, _count, _envelope
from .test_source import _post_form


def precise_times(root: Path, since: float) -> list[str]:
    """Every file or folder under ``root`` whose mtime (or file atime) is not a whole UTC day (for
    blobs, folders) or hour (for partial uploads) and falls after ``since``: a time to the
    second that says when something arrived.
    """
    found = []
    for path in [root, *root.rglob("*")]:
        st = path.stat()
        times = [("mtime", st.st_mtime)]
        if path.is_file():  # a folder's atime is the last listing (this one, too), not a tip's
            times.append(("atime", st.st_atime))
        for name, value in times:
            if value < since:
                continue  # older than the test: not about these submissions
            whole = 3600 if path.suffix == ".part" else 86400
            if value % whole:
                found.append(f"{path.relative_to(root)} {name}")
    return found


def upload_half(browser: Browser, envelope: bytes) -> str:
    created = browser.create(envelope)
    assert created.status_code == 201, created.text
    upload_id: str = created.json["id"]
    offset = created.json["received"]
    assert browser.put(upload_id, offset, envelope[offset:]).status_code == 200
    return upload_id


def test_no_precise_time_on_any_file_or_folder(app: Flask, org_keys: Keys) -> None:
    root = Path(app.config["DATA_DIR"])  # everything the server writes but the database
    assert not any(p.name.startswith("tipline.db") for p in root.rglob("*"))
    # What the app wrote when it started (the secret key, a lock) is older than ``since``; file
    # times come from a coarser clock than time.time(), hence the margin.
    time.sleep(0.3)
    since = time.time() - 0.1
    # Control: the check sees a file written the ordinary way.
    plain = root / "blobs" / "submissions" / "control"
    plain.write_bytes(b"x")
    assert precise_times(root, since) == [
        "blobs/submissions mtime",
        "blobs/submissions/control mtime",
        "blobs/submissions/control atime",
    ]
    plain.unlink()
    os.utime(root / "blobs" / "submissions", (day_start(), day_start()))
    # Real submissions: no-JS, a finished API upload, and one still uploading.
    assert _post_form(app.test_client(), "a no-JS tip", {"a.txt": b"file"}).status_code == 200
    browser = Browser(app.test_client(), org_keys.alice.public.public_key)
    browser.register()
    half = browser.create(_envelope(org_keys, browser))
    assert half.status_code == 201
    with app.app_context():
        assert len(db.session().scalars(text("select id from submissions")).all()) == 2
    store: BlobStore = app.extensions["tipline.blobs"]
    assert precise_times(root, since) == []
    assert len(list(store.ids("submissions"))) == 2
    # Reading them (an export) records no time either (O_NOATIME; relatime would set it).
    for blob_id, _path in store.ids("submissions"):
        with store.open("submissions", blob_id) as f:
            assert f.read()
    assert precise_times(root, since) == []
    # Control: an ordinary read of the same file records when (the mount is relatime here).
    first = next(iter(store.ids("submissions")))[1]
    first.read_bytes()
    assert [t for t in precise_times(root, since) if t.endswith("atime")] == [
        f"{first.relative_to(root)} atime"
    ]


def test_blobs_wait_in_pending_until_the_hour_has_passed(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, 0)
    blob_id = "ab" * 16
    store.write("submissions", blob_id, lambda f: f.write(b"sealed"))
    pending = store.pending_path("submissions", blob_id)
    assert pending.exists() and not store.published_path("submissions", blob_id).exists()
    with store.open("submissions", blob_id) as f:  # readers find it at once
        assert f.read() == b"sealed"
    assert store.publish() == 0  # arrived this hour: not yet
    assert store.publish(now=time.time() + 3600) == 1  # the next hour's run moves it
    published = store.published_path("submissions", blob_id)
    assert not pending.exists() and published.read_bytes() == b"sealed"
    st = published.stat()
    assert st.st_mtime == day_start() and st.st_ctime >= hour_start()
    with store.open("submissions", blob_id) as f:
        assert f.read() == b"sealed"


def test_finishing_twice_at_once_and_again_after_a_lost_answer(app: Flask, org_keys: Keys) -> None:
    client = app.test_client()
    browser = Browser(client, org_keys.alice.public.public_key)
    upload_id = upload_half(browser, _envelope(org_keys, browser))
    before = client.get_cookie("tipline")
    assert before is not None
    results: list[Any] = []

    def finish() -> None:
        other = app.test_client()
        other.set_cookie("tipline", before.value)
        results.append(
            other.post(
                f"/api/source/uploads/{upload_id}/finish", headers={"X-CSRFToken": browser.token}
            )
        )

    threads = [threading.Thread(target=finish) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 200, 200, 201], [r.text for r in results]
    # The answer was lost: the page retries with the session it had, and is told it is stored
    # (and logged in as the new source, as the lost answer would have done).
    again = browser.call("POST", f"/api/source/uploads/{upload_id}/finish")
    assert again.status_code == 200 and again.json["ok"]
    assert client.get("/api/source/replies").status_code == 200
    assert _count(app, Submission) == 1 and _count(app, Source) == 1 and _count(app, Upload) == 0
    # Control: someone else's session cannot learn or claim it.
    stranger = Browser(app.test_client(), org_keys.alice.public.public_key)
    assert stranger.call("POST", f"/api/source/uploads/{upload_id}/finish").status_code == 401


def test_a_refused_commit_gives_the_upload_back(app: Flask, org_keys: Keys) -> None:
    browser = Browser(app.test_client(), org_keys.alice.public.public_key)
    envelope = _envelope(org_keys, browser)
    upload_id = upload_half(browser, envelope)
    store: BlobStore = app.extensions["tipline.blobs"]
    refuse = {
        "sqlite": "CREATE TRIGGER refuse BEFORE INSERT ON submissions "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END",
        "postgresql": "CREATE RULE refuse AS ON INSERT TO submissions DO INSTEAD NOTHING",
    }
    with app.app_context():
        dialect = db.session().get_bind().dialect.name
        if dialect == "postgresql":  # a rule cannot fail; a CHECK that every row breaks can
            statement = "ALTER TABLE submissions ADD CONSTRAINT refuse CHECK (size < 0) NOT VALID"
        else:
            statement = refuse["sqlite"]
        db.session().execute(text(statement))
        db.session().commit()
    done = browser.finish(upload_id)
    assert done.status_code == 500
    assert "Traceback" not in done.text
    # Nothing half-visible, nothing lost: the upload is whole and in its place.
    assert store.upload_path(upload_id).read_bytes() == envelope
    assert not store.exists("submissions", upload_id)
    assert _count(app, Submission) == 0 and _count(app, Upload) == 1
    with app.app_context():
        undo = (
            "DROP TRIGGER refuse"
            if dialect == "sqlite"
            else ("ALTER TABLE submissions DROP CONSTRAINT refuse")
        )
        db.session().execute(text(undo))
        db.session().commit()
    assert browser.finish(upload_id).status_code == 201  # the page's retry now stores it
    with store.open("submissions", upload_id) as f:
        assert f.read() == envelope
    assert not store.upload_path(upload_id).exists()


def test_the_sweeper_removes_what_crashes_leave(app: Flask, org_keys: Keys) -> None:
    store: BlobStore = app.extensions["tipline.blobs"]
    browser = Browser(app.test_client(), org_keys.alice.public.public_key)
    browser.register()
    envelope = _envelope(org_keys, browser)
    # A finish killed between its move and its commit.
    interrupted = upload_half(browser, envelope)
    store.adopt("submissions", interrupted, store.upload_path(interrupted))
    # A blob whose row never came (or whose row was deleted), and a partial file with no row.
    orphan = "0f" * 16
    store.write("submissions", orphan, lambda f: f.write(b"orphan"))
    part = store.upload_path("1e" * 16)
    part.write_bytes(b"partial")
    # An upload row whose file is gone.
    lost = upload_half(browser, envelope)
    store.upload_path(lost).unlink()
    kept = {sid for sid, _ in store.ids("submissions")} - {interrupted, orphan}
    with app.app_context():
        young = sweeper.run(db.session(), store)  # control: young files are left alone
        assert (young.blobs, young.parts, young.restored) == (0, 0, 0)
        assert young.uploads == 1  # a row without a file has nothing a request could be using
        swept = sweeper.run(db.session(), store, grace=0)
    assert (swept.restored, swept.blobs, swept.parts) == (1, 1, 1), swept
    assert store.upload_path(interrupted).read_bytes() == envelope
    assert not store.exists("submissions", orphan) and not part.exists()
    assert {sid for sid, _ in store.ids("submissions")} == kept
    assert browser.finish(interrupted).status_code == 201  # given back whole
    assert _count(app, Upload) == 0


def test_a_full_disk_refuses_and_leaves_nothing(app: Flask, org_keys: Keys) -> None:
    browser = Browser(app.test_client(), org_keys.alice.public.public_key)
    browser.register()
    store: BlobStore = app.extensions["tipline.blobs"]
    before = sorted(p.name for p in store.root.rglob("*"))
    store.min_free = 1 << 62  # the floor is above what is free
    assert browser.create(_envelope(org_keys, browser)).status_code == 503
    assert _post_form(app.test_client(), "a tip", {}).status_code == 503
    assert sorted(p.name for p in store.root.rglob("*")) == before
    assert _count(app, Upload) == 0 and _count(app, Submission) == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_deleted_source_is_not_left_in_the_wal(app: Flask, org_keys: Keys) -> None:
    browser = Browser(app.test_client(), org_keys.alice.public.public_key)
    browser.register()
    files = [Path(app.config["DATA_DIR"]).parent / n for n in ("tipline.db", "tipline.db-wal")]
    with app.app_context():
        (source,) = db.session().scalars(text("select id from sources")).all()
        row = db.session().get(Source, source)
        assert row is not None
        marks = [row.id.encode(), row.designation.encode()]

    def found() -> list[bytes]:
        data = b"".join(f.read_bytes() for f in files if f.exists())
        return [m for m in marks if m in data]

    assert found() == marks  # control: the scan sees them while the source exists
    with app.app_context():
        row = db.session().get(Source, source)
        assert row is not None
        delete_source(db.session(), app.extensions["tipline.blobs"], row)
    assert found() == []
    assert files[1].stat().st_size == 0  # the WAL was emptied after the checkpoint


def test_closing_last_removes_the_journal_unless_another_has_it_open(tmp_path: Path) -> None:
    """``db.close_last`` (the server's on_exit): with another connection still open the journal
    stays and it says so; once that one has gone, it removes ``-wal`` and ``-shm``. A database
    that is not there is not made, and PostgreSQL has nothing to close."""
    path = tmp_path / "tipline.db"
    url = f"sqlite:///{path}"
    assert db.close_last(url) and not path.exists()
    assert db.close_last("postgresql://nobody@127.0.0.1:1/none")
    other = sqlite3.connect(path)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("CREATE TABLE t (x)")
    other.commit()
    journal = [tmp_path / "tipline.db-wal", tmp_path / "tipline.db-shm"]
    assert all(f.exists() for f in journal)
    assert not db.close_last(url)  # the other connection is still open
    assert all(f.exists() for f in journal)
    other.close()  # the last to close removes them itself: plant them again without a close
    leaver = subprocess.run(
        [sys.executable, "-c", _LEAVE_A_JOURNAL, str(path)], capture_output=True, text=True
    )
    assert leaver.returncode == 0, leaver.stderr
    assert all(f.exists() for f in journal)  # control: a process gone without closing
    assert db.close_last(url)
    assert not any(f.exists() for f in journal)
    with contextlib.closing(sqlite3.connect(path)) as check:  # the row reached the database
        assert check.execute("SELECT count(*) FROM t").fetchone() == (1,)


# Writes a row and exits without closing its connection (as a killed worker does).
_LEAVE_A_JOURNAL = """
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("INSERT INTO t VALUES (1)")
conn.commit()
os._exit(0)
"""


def test_fault_points_are_inert_unless_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(faults.ENV, raising=False)
    faults.point("finish-moved")  # nothing happens
    monkeypatch.setenv(faults.ENV, "blob-written")
    faults.point("finish-moved")  # another point: nothing happens
    with pytest.raises(ValueError, match="unknown fault point"):
        faults.point("no-such-point")
    # Control: named, the point kills the process exactly as kill -9 does.
    env = {**os.environ, faults.ENV: "finish-moved"}
    code = "from tipline.server import faults; faults.point('finish-moved'); print('alive')"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == -9 and "alive" not in done.stdout
    env.pop(faults.ENV)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "alive" in done.stdout


def test_nothing_in_production_sets_the_fault_variable() -> None:
    repo = Path(__file__).resolve().parents[2]
    hits = [
        str(p.relative_to(repo))
        for folder in ("deploy", "tipline")
        for p in (repo / folder).rglob("*")
        if p.is_file()
        and not stat.S_ISLNK(p.lstat().st_mode)
        and p.suffix != ".pyc"
        and faults.ENV in p.read_text(errors="replace")
    ]
    assert hits == ["tipline/server/faults.py"]


def test_an_os_error_is_logged_without_its_path(
    app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = "/srv/blobs/uploads/" + "ab" * 16 + ".part"

    def boom(*_args: Any) -> None:
        raise FileNotFoundError(2, "No such file or directory", path)

    monkeypatch.setattr("tipline.server.source.fingerprint", boom)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    assert app.test_client().get("/").status_code == 500
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "FileNotFoundError (errno 2)" in logged and "boom" in logged  # where, and what
    assert "ab" * 16 not in logged and "uploads/" not in logged
    # Control: another error's message is logged as before (the capture sees messages).
    caplog.clear()
    monkeypatch.setattr(
        "tipline.server.source.fingerprint",
        lambda *_a: (_ for _ in ()).throw(RuntimeError("visible " + path)),
    )
    assert app.test_client().get("/").status_code == 500
    assert any(r.exc_info and path in str(r.exc_info[1]) for r in caplog.records)


def test_retention_sweeps_orphan_replies_and_submissions(
    tmp_path: Path, run_cli: Any, app_factory: Any
) -> None:
    app = app_factory()
    store: BlobStore = app.extensions["tipline.blobs"]
    reply, submission = "2d" * 16, "3c" * 16
    store.write("replies", reply, lambda f: f.write(b"reply with no row"))
    store.write("submissions", submission, lambda f: f.write(b"blob with no row"))
    assert store.path("replies", reply).is_relative_to(tmp_path)
    done = run_cli("retention")
    assert done.returncode == 0, done.stderr
    assert "removed 0 orphan blobs" in done.stderr  # control: too young to be an orphan yet
    real = time.time  # age is counted from the ctime, which only the clock can move
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("tipline.server.sweeper.time.time", lambda: real() + sweeper.GRACE + 60)
        done = run_cli("retention")
    assert done.returncode == 0, done.stderr
    assert "removed 2 orphan blobs" in done.stderr
    assert not store.exists("replies", reply) and not store.exists("submissions", submission)


def test_the_hourly_publisher_publishes_and_starts_once_per_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BlobStore(tmp_path, 0)
    store.write("submissions", "4b" * 16, lambda f: f.write(b"sealed"))
    naps: list[float] = []

    class StopError(Exception):
        pass

    def nap(seconds: float) -> None:
        if naps:
            raise StopError
        naps.append(seconds)
        monkeypatch.setattr("tipline.server.blobs.hour_start", lambda now=None: time.time() + 1)

    monkeypatch.setattr("tipline.server.blobs.time.sleep", nap)
    with pytest.raises(StopError):
        store._publish_every_hour()
    assert 5 < naps[0] <= 3605  # until a few seconds into the next hour
    assert store.published_path("submissions", "4b" * 16).exists()
    started: list[object] = []
    monkeypatch.setattr(
        "tipline.server.blobs.threading.Thread", lambda **kw: started.append(kw) or _Idle()
    )
    store.start_hourly_publisher()
    store.start_hourly_publisher()
    assert len(started) == 1


class _Idle:
    def start(self) -> None:
        pass


def test_the_sweep_drops_idle_uploads_only(app: Flask, org_keys: Keys, run_cli: Any) -> None:
    browser = Browser(app.test_client(), org_keys.alice.public.public_key)
    envelope = _envelope(org_keys, browser)
    idle, busy = (browser.create(envelope).json["id"] for _ in range(2))
    store: BlobStore = app.extensions["tipline.blobs"]
    with app.app_context():
        for upload_id in (idle, busy):
            row = db.session().get(Upload, upload_id)
            assert row is not None
            row.created = row.created - datetime.timedelta(hours=49)
        db.session().commit()
    long_ago = time.time() - 49 * 3600
    os.utime(store.upload_path(idle), (long_ago, long_ago))  # no chunk for 49 hours
    done = run_cli("sweep")
    assert done.returncode == 0, done.stderr
    assert "1 upload rows without a file or idle too long" in done.stderr
    assert _count(app, Upload) == 1 and not store.upload_path(idle).exists()
    assert store.upload_path(busy).exists()  # control: started as long ago, but active
