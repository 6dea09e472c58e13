"""Alembic environment: runs on the engine the app (or a test) hands over, never on a URL typed
into alembic.ini, so there is one place the database is configured (tipline.server.config).
"""

from __future__ import annotations

from alembic import context

from tipline.server.models import Base

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
    )
    context.run_migrations()
