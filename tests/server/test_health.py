"""The health report (``tipline-server health`` and /admin/health): each condition is made to
happen and the report must say so, with the exit status a monitoring system reads."""

from __future__ import annotations

import datetime
import json
import shutil
from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tipline.crypto import manifest
from tipline.server import db, health, retention
from tipline.server.models import AuditEntry, InstalledManifest, Source, Upload, new_id, this_hour

from .conftest import CliResult, Keys, make_staff, page_token, staff_login
from .test_journalist import store_source


def report(app: Flask, **at: Any) -> health.Report:
    with app.app_context():
        return health.report(
            db.session(),
            app.extensions["tipline.blobs"],
            app.config["ORG_PUBLIC_KEY_BYTES"],
            app.config["UPLOAD_TTL_HOURS"],
            **at,
        )


def check(result: health.Report, name: str) -> health.Check:
    (found,) = [c for c in result.checks if c.name == name]
    return found


def ran_retention(app: Flask) -> None:
    with app.app_context():
        retention.run(db.session(), app.extensions["tipline.blobs"])


def test_a_healthy_tip_line_is_ok_in_every_check(app: Flask) -> None:
    ran_retention(app)
    result = report(app)
    assert [c.name for c in result.checks] == [
        "database", "disk", "manifest", "retention", "uploads", "sources", "sealing",
    ]  # fmt: skip
    assert {c.name: c.status for c in result.checks} == dict.fromkeys(
        [c.name for c in result.checks], health.Status.OK
    )
    assert result.status is health.Status.OK
    assert "removed 0 submissions, 0 replies, 0 sources" in check(result, "retention").summary


def test_disk_below_the_floor_fails_and_near_it_warns(app_factory: Callable[..., Flask]) -> None:
    probe = app_factory(install=False)
    free = shutil.disk_usage(probe.extensions["tipline.blobs"].root).free
    low = app_factory(install=False, MIN_FREE_BYTES=free + (1 << 30))
    found = check(report(low), "disk")
    assert found.status is health.Status.FAIL and "new tips are refused" in found.summary
    near = app_factory(install=False, MIN_FREE_BYTES=free * 2 // 3)
    assert check(report(near), "disk").status is health.Status.WARN
    fine = app_factory(install=False, MIN_FREE_BYTES=free // 4)
    assert check(report(fine), "disk").status is health.Status.OK


def test_no_manifest_says_why(app_factory: Callable[..., Flask], org_keys: Keys) -> None:
    app = app_factory(install=False)
    found = check(report(app), "manifest")
    assert found.status is health.Status.FAIL and "none is installed" in found.summary
    # An expired manifest cannot be installed any more: put one in the table as if it had been
    # installed while it was valid.
    issued = datetime.date(2026, 1, 1)
    old = manifest.sign_manifest(
        org_keys.org, 7, [org_keys.alice.public], issued, datetime.date(2026, 3, 1)
    )
    with app.app_context():
        installed = datetime.date(2026, 2, 1)  # while it was valid
        db.session().add(InstalledManifest(version=7, file=old, installed=installed))
        db.session().commit()
    found = check(report(app), "manifest")
    assert found.status is health.Status.FAIL
    assert "version 7 expired on 2026-03-01" in found.summary, found.summary


def test_a_manifest_near_expiry_warns(app_factory: Callable[..., Flask], org_keys: Keys) -> None:
    app = app_factory(install=False)
    today = datetime.datetime.now(datetime.UTC).date()
    soon = manifest.sign_manifest(
        org_keys.org, 1, [org_keys.alice.public], today, today + datetime.timedelta(days=10)
    )
    with app.app_context():
        db.session().add(InstalledManifest(version=1, file=soon))
        db.session().commit()
    found = check(report(app), "manifest")
    assert found.status is health.Status.WARN and found.figures["days_left"] == 10
    assert "10 days left" in found.summary


def test_retention_never_run_or_late_warns(app: Flask) -> None:
    assert check(report(app), "retention").status is health.Status.WARN
    ran_retention(app)
    assert check(report(app), "retention").status is health.Status.OK
    later = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + datetime.timedelta(days=2)
    found = check(report(app, now=later), "retention")
    assert found.status is health.Status.WARN and "should run daily" in found.summary


def test_abandoned_uploads_warn(app: Flask) -> None:
    def upload(created: datetime.datetime) -> Upload:
        return Upload(
            size=10, manifest_version=1, created=created, token_hash=new_id()[:32].encode()
        )

    with app.app_context():
        db.session().add(upload(this_hour()))
        db.session().commit()
    found = check(report(app), "uploads")
    assert found.status is health.Status.OK and found.figures == {"pending": 1, "abandoned": 0}
    with app.app_context():
        db.session().add(upload(this_hour() - datetime.timedelta(hours=72)))
        db.session().commit()
    found = check(report(app), "uploads")
    assert found.status is health.Status.WARN and found.figures == {"pending": 2, "abandoned": 1}


def empty_source(session: Session) -> str:
    source = Source(
        designation="quiet heron",
        token_hash=new_id().encode()[:32],
        reply_public_key=bytes(32),
        submitted=False,
    )
    session.add(source)
    session.commit()
    return source.id


def test_sources_without_submissions_warn_and_are_pruned_from_the_page(
    app: Flask, org_keys: Keys
) -> None:
    kept = store_source(app, [org_keys.alice.public.public_key], count=1)
    with app.app_context():
        empty_source(db.session())
        empty_source(db.session())
    found = check(report(app), "sources")
    assert found.status is health.Status.WARN and found.figures["without_submissions"] == 2

    admin = app.test_client()
    assert staff_login(app, admin, make_staff(app, "chief", admin=True)).status_code == 303
    page = admin.get("/admin/health")
    assert page.status_code == 200 and 'data-status="warn"' in page.text
    assert "Remove these 2 sources now" in page.text
    assert admin.post("/admin/health/prune-sources").status_code == 400  # no CSRF token: nothing
    pruned = admin.post("/admin/health/prune-sources", data={"csrf_token": page_token(page.text)})
    assert pruned.status_code == 200 and "Removed 2 sources" in pruned.text
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Source)) == 1
        assert db.session().get(Source, kept.source_id) is not None  # a real source stays
        entry = (
            db.session()
            .scalars(select(AuditEntry).where(AuditEntry.action == "prune-sources"))
            .one()
        )
        assert (entry.actor, entry.detail) == ("chief", "2 sources")
    assert check(report(app), "sources").status is health.Status.OK


def test_items_sealed_only_to_retired_keys_are_counted(app: Flask, org_keys: Keys) -> None:
    alice, bob = org_keys.alice.public.public_key, org_keys.bob.public.public_key
    store_source(app, [alice], count=2)
    store_source(app, [alice, bob], count=1)
    assert check(report(app), "sealing").status is health.Status.OK
    with app.app_context():
        from tipline.server import keyset

        keyset.install(
            db.session(), org_keys.signed(2, org_keys.bob), org_keys.org.public.public_key
        )
    found = check(report(app), "sealing")
    assert found.status is health.Status.WARN
    assert found.figures == {"sealed_only_to_retired": 2, "more": False}


def test_an_unreachable_database_fails() -> None:
    from sqlalchemy import create_engine

    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    with Session(engine) as session:
        found = health.check_database(session)
    assert found.status is health.Status.FAIL and "does not answer" in found.summary


def test_the_command_prints_and_exits_with_the_worst_status(
    run_cli: Callable[..., CliResult],
) -> None:
    none = run_cli("health")  # no manifest installed: a failure
    assert none.returncode == 2, none
    assert "fail  manifest" in none.stdout and "none is installed" in none.stdout
    as_json = json.loads(run_cli("health", "--json").stdout)
    assert as_json["status"] == "fail"
    by_name = {c["name"]: c for c in as_json["checks"]}
    assert by_name["manifest"]["status"] == "fail" and by_name["database"]["status"] == "ok"
    assert by_name["retention"]["status"] == "warn"
    assert run_cli("retention").returncode == 0
    after = json.loads(run_cli("health", "--json").stdout)
    assert {c["name"]: c["status"] for c in after["checks"]}["retention"] == "ok"


def test_health_is_for_admins_only(app: Flask) -> None:
    journalist = app.test_client()
    assert staff_login(app, journalist, make_staff(app, "reporter")).status_code == 303
    assert journalist.get("/admin/health").status_code in (403, 404)
    assert app.test_client().get("/admin/health").status_code in (302, 303)
