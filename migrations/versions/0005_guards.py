"""production guards: shared rate-limit counters, Voyager as last seen by the monitor

Revision ID: 0005_guards
Revises: 0004_money
"""
from alembic import op
import sqlalchemy as sa

revision = "0005_guards"
down_revision = "0004_money"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_counter",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("window_start", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "window_start"),
    )
    op.create_table(
        "observatory_status",
        sa.Column("telescope", sa.String(length=64), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_ok_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("telescope"),
    )


def downgrade() -> None:
    op.drop_table("observatory_status")
    op.drop_table("rate_limit_counter")
