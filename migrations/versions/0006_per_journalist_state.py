"""Per-journalist state: which account downloaded which submission (so "new" is per account and
one journalist's export no longer hides items from another), and which journalists a source is
assigned to.

An existing downloaded flag counts as downloaded for every existing account (journalists and
admins, disabled or not), on the day it was first downloaded: nobody's "new" list suddenly
fills with old items after the upgrade. ``submissions.downloaded_on`` stays the first download
by anyone, the retention clock (docs/ADMIN.md).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "downloads",
        sa.Column(
            "account_id",
            sa.String(32),
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "submission_id",
            sa.String(32),
            sa.ForeignKey("submissions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("day", sa.Date, nullable=False),
    )
    op.create_index("ix_downloads_submission_id", "downloads", ["submission_id"])
    op.create_table(
        "assignments",
        sa.Column(
            "source_id",
            sa.String(32),
            sa.ForeignKey("sources.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "account_id",
            sa.String(32),
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    )
    op.create_index("ix_assignments_account_id", "assignments", ["account_id"])
    op.execute(
        "INSERT INTO downloads (account_id, submission_id, day) "
        "SELECT accounts.id, submissions.id, "
        "COALESCE(submissions.downloaded_on, submissions.received) "
        "FROM accounts CROSS JOIN submissions "
        "WHERE submissions.downloaded = true"
    )


def downgrade() -> None:
    # The shared flag already says "downloaded by anyone": nothing to fold back.
    op.drop_index("ix_assignments_account_id", table_name="assignments")
    op.drop_table("assignments")
    op.drop_index("ix_downloads_submission_id", table_name="downloads")
    op.drop_table("downloads")
