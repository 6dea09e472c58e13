"""``tipline-server install-manifest`` and ``db upgrade``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import CliResult, Keys


def test_install_and_rollback(
    tmp_path: Path, org_keys: Keys, run_cli: Callable[..., CliResult]
) -> None:
    upgraded = run_cli("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    v1, v2 = tmp_path / "v1.json", tmp_path / "v2.json"
    v1.write_bytes(org_keys.signed(1))
    v2.write_bytes(org_keys.signed(2, org_keys.alice, org_keys.bob))
    first = run_cli("install-manifest", "--yes", str(v1))
    assert first.returncode == 0 and "installed key manifest version 1" in first.stderr
    second = run_cli("install-manifest", "--yes", str(v2))
    assert second.returncode == 0, second.stderr
    assert second.stderr.count("  kept ") == 1 and second.stderr.count("  added ") == 1
    rollback = run_cli("install-manifest", "--yes", str(v1))
    assert rollback.returncode == 1
    assert rollback.stderr.startswith("tipline-server: the key manifest was refused")
    assert "not newer" in rollback.stderr and "Traceback" not in rollback.stderr


@pytest.mark.parametrize("content", [b"{}", b"not json", b"x" * 200_000])
def test_bad_manifest_files(
    tmp_path: Path, run_cli: Callable[..., CliResult], content: bytes
) -> None:
    run_cli("db", "upgrade")
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    result = run_cli("install-manifest", "--yes", str(bad))
    assert result.returncode == 1 and "Traceback" not in result.stderr


def _head() -> str:
    from alembic.script import ScriptDirectory

    from tipline.server import db

    head = ScriptDirectory.from_config(db.alembic_config(None)).get_current_head()  # type: ignore[arg-type]
    assert head is not None
    return head


def _engine(database_url: str):  # type: ignore[no-untyped-def]
    from tipline.server import db

    return db.make_engine(database_url)


def test_db_upgrade_says_what_it_did(database_url: str, run_cli: Callable[..., CliResult]) -> None:
    """A brand-new database: created; an old one: upgraded from X to Y; then: up to date."""
    from sqlalchemy import inspect

    from tipline.server import db

    head = _head()
    engine = _engine(database_url)
    try:
        if inspect(engine).has_table("alembic_version"):  # the shared PostgreSQL database
            db.downgrade(engine, "base")
        assert db.schema_version(engine) is None
        created = run_cli("db", "upgrade")
        assert created.returncode == 0, created.stderr
        assert created.stderr == f"tipline-server: created every table (schema version {head})\n"
        assert db.schema_version(engine) == head
        assert {"sources", "submissions", "accounts"} <= set(inspect(engine).get_table_names())

        db.downgrade(engine, "0002")
        upgraded = run_cli("db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        assert upgraded.stderr == (
            f"tipline-server: upgraded the database from schema version 0002 to {head}\n"
        )

        again = run_cli("db", "upgrade")
        assert again.returncode == 0, again.stderr
        assert again.stderr == (
            f"tipline-server: the database is already up to date (schema version {head})\n"
        )
    finally:
        engine.dispose()


def test_db_upgrade_refuses_a_schema_it_does_not_know(
    database_url: str, run_cli: Callable[..., CliResult]
) -> None:
    """A database from a newer release (the code was rolled back): one clear line, no change."""
    from sqlalchemy import text

    assert run_cli("db", "upgrade").returncode == 0
    engine = _engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        refused = run_cli("db", "upgrade")
        assert refused.returncode == 1
        assert refused.stderr.startswith(
            "tipline-server: the database schema cannot be brought up to date: it is at "
            "version 9999, which this release does not know"
        )
        assert "Traceback" not in refused.stderr and refused.stderr.count("\n") == 1
        with engine.begin() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "9999"
            conn.execute(text(f"UPDATE alembic_version SET version_num = '{_head()}'"))
    finally:
        engine.dispose()
