"""mosaics: the layout on the order, one row per panel, the panel of each shot line

Revision ID: 0011_mosaic
Revises: 0010_telescopes
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
from sqlalchemy.dialects import postgresql

revision = "0011_mosaic"
down_revision = "0010_telescopes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("order", sa.Column("mosaic", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column("order_shot", sa.Column("panel_index", sa.Integer(), nullable=True))
    op.create_table(
        "order_panel",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("panel_index", sa.Integer(), nullable=False),
        sa.Column("column", sa.Integer(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=220), nullable=False),
        sa.Column("ra_j2000", sa.Float(), nullable=False),
        sa.Column("dec_j2000", sa.Float(), nullable=False),
        sa.Column("target_guid", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["order.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id", "panel_index", name="uq_order_panel_index"),
    )
    op.create_index(op.f("ix_order_panel_order_id"), "order_panel", ["order_id"], unique=False)
    op.create_index(op.f("ix_order_panel_target_guid"), "order_panel", ["target_guid"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_order_panel_target_guid"), table_name="order_panel")
    op.drop_index(op.f("ix_order_panel_order_id"), table_name="order_panel")
    op.drop_table("order_panel")
    op.drop_column("order_shot", "panel_index")
    op.drop_column("order", "mosaic")
