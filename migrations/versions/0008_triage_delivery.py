"""Triage updates (docs/SPEC.md §8.5) get a row each (size, the day they arrived) so that they
expire (``TRIAGE_MAX_DAYS``, by the retention run), and a delivery mark per account, so that a
journalist's export carries only the updates not yet delivered to that account.

Updates stored before this revision have blobs and no row: the sweep removes them as orphans
(Tipline is not yet released; desks send again what has not come back).

Revision ID: 0008
Revises: 0006 (0007 is another change's; when both are merged this one revises 0007)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "triage_updates",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("stored", sa.Date, nullable=False),
    )
    op.create_index("ix_triage_updates_stored", "triage_updates", ["stored"])
    op.create_table(
        "triage_deliveries",
        sa.Column(
            "account_id",
            sa.String(32),
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "update_id",
            sa.String(32),
            sa.ForeignKey("triage_updates.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    )
    op.create_index("ix_triage_deliveries_update_id", "triage_deliveries", ["update_id"])


def downgrade() -> None:
    op.drop_index("ix_triage_deliveries_update_id", table_name="triage_deliveries")
    op.drop_table("triage_deliveries")
    op.drop_index("ix_triage_updates_stored", table_name="triage_updates")
    op.drop_table("triage_updates")
