"""The source interface's tables: sources, submissions, replies, uploads, installed manifests.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("designation", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("reply_public_key", sa.LargeBinary(32), nullable=False),
        sa.Column("created", sa.Date, nullable=False),
    )
    for table in ("submissions", "replies"):
        op.create_table(
            table,
            sa.Column("id", sa.String(32), primary_key=True),
            sa.Column(
                "source_id",
                sa.String(32),
                sa.ForeignKey("sources.id", ondelete="CASCADE"),
                nullable=False,
                index=True,
            ),
            sa.Column("size", sa.BigInteger, nullable=False),
            *(
                [sa.Column("received", sa.Date, nullable=False)]
                if table == "submissions"
                else [
                    sa.Column("created", sa.Date, nullable=False),
                    sa.Column("read", sa.Boolean, nullable=False),
                ]
            ),
        )
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "source_id",
            sa.String(32),
            sa.ForeignKey("sources.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("manifest_version", sa.BigInteger, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
    )
    op.create_table(
        "manifests",
        sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("file", sa.LargeBinary, nullable=False),
        sa.Column("installed", sa.Date, nullable=False),
    )


def downgrade() -> None:
    for table in ("manifests", "uploads", "replies", "submissions", "sources"):
        op.drop_table(table)
