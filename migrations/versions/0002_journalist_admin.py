"""The journalist and admin side: accounts, API tokens, audit log, settings; stars, the
downloaded flag, and the indexes the journalist list pages walk.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(
            sa.Column("starred", sa.Boolean, nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(
            sa.Column("downloaded", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("downloaded_on", sa.Date, nullable=True))
    op.create_index("ix_sources_created_id", "sources", ["created", "id"])
    op.create_index(
        "ix_submissions_source_received_id", "submissions", ["source_id", "received", "id"]
    )
    op.create_index(
        "ix_submissions_downloaded_received_id", "submissions", ["downloaded", "received", "id"]
    )
    op.create_index("ix_submissions_downloaded_on", "submissions", ["downloaded_on"])
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("totp_secret", sa.String(64), nullable=True),
        sa.Column("totp_pending", sa.String(64), nullable=True),
        sa.Column("totp_last_step", sa.BigInteger, nullable=False),
        sa.Column("failed_logins", sa.Integer, nullable=False),
        sa.Column("locked_until", sa.DateTime, nullable=True),
        sa.Column("session_epoch", sa.Integer, nullable=False),
        sa.Column("created", sa.Date, nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "account_id",
            sa.String(32),
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("created", sa.Date, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("at", sa.DateTime, nullable=False, index=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("detail", sa.String(500), nullable=False),
    )
    op.create_table(
        "settings",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("settings", "audit_log", "api_tokens", "accounts"):
        op.drop_table(table)
    op.drop_index("ix_submissions_downloaded_on", "submissions")
    op.drop_index("ix_submissions_downloaded_received_id", "submissions")
    op.drop_index("ix_submissions_source_received_id", "submissions")
    op.drop_index("ix_sources_created_id", "sources")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("downloaded_on")
        batch.drop_column("downloaded")
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("starred")
