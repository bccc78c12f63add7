"""retention of frames: when the notice went out, when the files were deleted

Adds ``order.retention_notice_at``, ``order.frames_expired_at`` and ``shot_done.expired_at``
(all nullable: existing rows have been neither noticed nor expired). See docs/operations.md.

Revision ID: 0006_retention
Revises: 0005_guards
"""
from alembic import op
import sqlalchemy as sa

revision = "0006_retention"
# The initial schema's revision id is "0001" (file 0001_initial.py).
down_revision = "0005_guards"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("order", sa.Column("retention_notice_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("order", sa.Column("frames_expired_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("shot_done", sa.Column("expired_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("shot_done", "expired_at")
    op.drop_column("order", "frames_expired_at")
    op.drop_column("order", "retention_notice_at")
