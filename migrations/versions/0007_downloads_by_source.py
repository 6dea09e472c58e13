"""The journalist lists at the scale of a big leak (100,000 sources, 1,000,000 submissions:
bench/journalist.py): each download row keeps its submission's source, indexed with the account,
so "new for me" counts per source instead of looking up every submission; each assignment keeps
its source's creation day, indexed after the account, so "assigned to me" reads only the
account's own rows, in the list's order (that index replaces the one on the account alone).

The copies are filled from ``submissions`` and ``sources`` (one pass over ``downloads``; on a
large tip line this takes a while, once).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("downloads") as batch:
        batch.add_column(sa.Column("source_id", sa.String(32), nullable=True))
    op.execute(
        "UPDATE downloads SET source_id = (SELECT submissions.source_id FROM submissions "
        "WHERE submissions.id = downloads.submission_id)"
    )
    with op.batch_alter_table("downloads") as batch:
        batch.alter_column("source_id", existing_type=sa.String(32), nullable=False)
    op.create_index("ix_downloads_account_id_source_id", "downloads", ["account_id", "source_id"])
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(sa.Column("created", sa.Date, nullable=True))
    op.execute(
        "UPDATE assignments SET created = (SELECT sources.created FROM sources "
        "WHERE sources.id = assignments.source_id)"
    )
    with op.batch_alter_table("assignments") as batch:
        batch.alter_column("created", existing_type=sa.Date, nullable=False)
    op.drop_index("ix_assignments_account_id", table_name="assignments")
    op.create_index(
        "ix_assignments_account_id_created_source_id",
        "assignments",
        ["account_id", "created", "source_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_assignments_account_id_created_source_id", table_name="assignments")
    op.create_index("ix_assignments_account_id", "assignments", ["account_id"])
    with op.batch_alter_table("assignments") as batch:
        batch.drop_column("created")
    op.drop_index("ix_downloads_account_id_source_id", table_name="downloads")
    with op.batch_alter_table("downloads") as batch:
        batch.drop_column("source_id")
