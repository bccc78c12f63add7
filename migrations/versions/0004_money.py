"""money that cannot leak: credit debt, payment reversals (refunds, disputes)

Adds ``credit_account.debt`` (credits owed after a refund or a dispute took back credits that were
already spent), ``payment_reversal`` (per charge: what Stripe reversed and what the ledger clawed
back), ``payment_dispute`` (one row per Stripe dispute) and ``invoice_payment`` (which
PaymentIntent paid which subscription invoice). See docs/payments.md.

Revision ID: 0004_money
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

revision = "0004_money"
# The initial schema's revision id is "0001" (file 0001_initial.py).
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("credit_account", sa.Column("debt", sa.BigInteger(), server_default="0", nullable=False))
    op.create_check_constraint("ck_account_debt_nonneg", "credit_account", "debt >= 0")
    op.create_table(
        "payment_reversal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charge_id", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("grant_key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("bucket", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("granted_credits", sa.Integer(), nullable=False),
        sa.Column("charge_amount_cents", sa.Integer(), nullable=False),
        sa.Column("refunded_cents", sa.Integer(), nullable=False),
        sa.Column("clawed_back", sa.Integer(), nullable=False),
        sa.Column("moves", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("charge_id"),
    )
    op.create_index(op.f("ix_payment_reversal_customer_id"), "payment_reversal", ["customer_id"], unique=False)
    op.create_table(
        "payment_dispute",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("charge_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_payment_dispute_charge_id"), "payment_dispute", ["charge_id"], unique=False)
    op.create_table(
        "invoice_payment",
        sa.Column("payment_intent_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("invoice_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("payment_intent_id"),
    )
    op.create_index(op.f("ix_invoice_payment_invoice_id"), "invoice_payment", ["invoice_id"], unique=False)
    op.create_index(op.f("ix_invoice_payment_customer_id"), "invoice_payment", ["customer_id"], unique=False)
    op.create_index(op.f("ix_payment_dispute_customer_id"), "payment_dispute", ["customer_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_invoice_payment_customer_id"), table_name="invoice_payment")
    op.drop_index(op.f("ix_invoice_payment_invoice_id"), table_name="invoice_payment")
    op.drop_table("invoice_payment")
    op.drop_index(op.f("ix_payment_dispute_customer_id"), table_name="payment_dispute")
    op.drop_index(op.f("ix_payment_dispute_charge_id"), table_name="payment_dispute")
    op.drop_table("payment_dispute")
    op.drop_index(op.f("ix_payment_reversal_customer_id"), table_name="payment_reversal")
    op.drop_table("payment_reversal")
    op.drop_constraint("ck_account_debt_nonneg", "credit_account", type_="check")
    op.drop_column("credit_account", "debt")
