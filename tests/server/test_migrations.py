"""Each migration goes up and down cleanly, on SQLite and PostgreSQL, and the head matches the
models exactly (so nobody changes a model without a migration)."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from tipline.server import db
from tipline.server.models import Base


def _revisions() -> list[str]:
    script = ScriptDirectory.from_config(db.alembic_config(None))  # type: ignore[arg-type]
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def _schema(engine: Engine) -> set[tuple[str, str]]:
    """Every (table, column) there is: a migration may add columns without adding tables."""
    found = inspect(engine)
    return {(t, c["name"]) for t in found.get_table_names() for c in found.get_columns(t)}


def test_every_migration_up_and_down(database_url: str, tmp_path: Path) -> None:
    engine = db.make_engine(database_url)
    try:
        if inspect(engine).has_table("alembic_version"):  # the PostgreSQL session database
            db.downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        previous = "base"
        for revision in _revisions():
            db.upgrade(engine, tmp_path, revision)
            after_up = _schema(engine)
            db.downgrade(engine, previous)
            assert _schema(engine) < after_up
            db.upgrade(engine, tmp_path, revision)
            assert _schema(engine) == after_up
            previous = revision
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        tables = {table for table, _ in after_up}
        assert {"sources", "submissions", "replies", "uploads", "manifests"} <= tables
    finally:
        engine.dispose()


def test_no_column_can_hold_an_address_or_a_precise_time() -> None:
    """A schema-level check on the promise in docs/THREAT-MODEL.md."""
    for table in Base.metadata.tables.values():
        for column in table.columns:
            assert not any(w in column.name for w in ("ip", "agent", "referer", "address"))
            kind = type(column.type).__name__
            if kind == "DateTime":
                # uploads.created is rounded to the hour; the other two are about staff
                # (login throttling, the admin audit log), never about a source.
                assert (table.name, column.name) in {
                    ("uploads", "created"),
                    ("accounts", "locked_until"),
                    ("audit_log", "at"),
                }
