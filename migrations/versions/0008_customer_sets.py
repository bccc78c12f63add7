"""customer Sets: the customer_set table, order.set_id; default Sets of existing orders become rows

Revision ID: 0008_customer_sets
Revises: 0007_web
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

revision = "0008_customer_sets"
down_revision = "0007_web"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_set",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("guid", sa.String(length=36), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("tag", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("synced_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("guid"),
        sa.UniqueConstraint("customer_id", "idempotency_key", name="uq_customer_set_idempotency"),
    )
    op.create_index(op.f("ix_customer_set_customer_id"), "customer_set", ["customer_id"], unique=False)
    op.create_index("uq_customer_set_name", "customer_set", ["customer_id", sa.text("lower(name)")], unique=True,
                    postgresql_where=sa.text("deleted_at IS NULL"))
    op.create_index("uq_customer_set_default", "customer_set", ["customer_id"], unique=True,
                    postgresql_where=sa.text("is_default"))
    op.add_column("order", sa.Column("set_id", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_order_set_id"), "order", ["set_id"], unique=False)
    op.create_foreign_key("order_set_id_fkey", "order", "customer_set", ["set_id"], ["id"])
    # Until now every order went to its customer's default Set (order.set_guid, tag user_<id>),
    # which Voyager already holds: each becomes a default row, synced. Its orders keep set_id NULL
    # (= the default Set).
    op.execute(sa.text(
        """INSERT INTO customer_set (customer_id, guid, name, tag, is_default, paused, version, synced_version,
                                     created_at, updated_at)
           SELECT customer_id, min(set_guid), 'User_' || customer_id, 'user_' || customer_id, true, false, 1, 1,
                  min(created_at), now()
           FROM "order" WHERE set_guid IS NOT NULL GROUP BY customer_id"""))


def downgrade() -> None:
    op.drop_constraint("order_set_id_fkey", "order", type_="foreignkey")
    op.drop_index(op.f("ix_order_set_id"), table_name="order")
    op.drop_column("order", "set_id")
    op.drop_index("uq_customer_set_default", table_name="customer_set")
    op.drop_index("uq_customer_set_name", table_name="customer_set")
    op.drop_index(op.f("ix_customer_set_customer_id"), table_name="customer_set")
    op.drop_table("customer_set")
