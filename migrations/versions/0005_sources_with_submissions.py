"""A source is stored only with its first submission: a first-time source's upload carries the
new source's token hash and reply key until it is finished; sources remember whether they ever
sent anything, so the ones that never did (left by the old register-then-upload path) can be
swept without touching a source whose submissions journalists deleted.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(
            sa.Column("submitted", sa.Boolean, nullable=False, server_default=sa.true())
        )
    # Sources with nothing stored and nothing sent to them were registered by a page whose
    # upload then failed or was cancelled: they never submitted. (A source whose submissions
    # were all deleted and who has no reply yet cannot be told apart from them; see ADMIN.md.)
    op.execute(
        "UPDATE sources SET submitted = false WHERE "
        "NOT EXISTS (SELECT 1 FROM submissions WHERE submissions.source_id = sources.id) "
        "AND NOT EXISTS (SELECT 1 FROM replies WHERE replies.source_id = sources.id)"
    )
    with op.batch_alter_table("uploads") as batch:
        batch.alter_column("source_id", existing_type=sa.String(32), nullable=True)
        batch.add_column(sa.Column("token_hash", sa.LargeBinary(32), nullable=True))
        batch.add_column(sa.Column("reply_public_key", sa.LargeBinary(32), nullable=True))


def downgrade() -> None:
    # Unfinished uploads of first-time sources have nowhere to go in the old schema.
    op.execute("DELETE FROM uploads WHERE source_id IS NULL")
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("reply_public_key")
        batch.drop_column("token_hash")
        batch.alter_column("source_id", existing_type=sa.String(32), nullable=False)
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("submitted")
