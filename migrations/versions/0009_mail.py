"""e-mail outbox: one row per message, delivered over SMTP by the worker's sender; the sender's
cursor over the ledger (payment received, credits low)

Revision ID: 0009_mail
Revises: 0008_customer_sets
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

revision = "0009_mail"
down_revision = "0008_customer_sets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_key", sa.String(length=255), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("order_event_id", sa.Integer(), nullable=True),
        sa.Column("to_address", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["order_event_id"], ["order_event.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source_key"),
        sa.UniqueConstraint("message_id"),
    )
    op.create_index(op.f("ix_mail_message_customer_id"), "mail_message", ["customer_id"], unique=False)
    # The sender's claim scans pending messages by due time; sent ones are the bulk and stay out.
    op.create_index("ix_mail_message_due", "mail_message", ["next_attempt_at"], unique=False,
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_table(
        "mail_cursor",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("last_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    # The ledger's history before this revision is not mailed: the cursor starts at its end.
    op.execute("INSERT INTO mail_cursor (name, last_id, updated_at) "
               "SELECT 'ledger', coalesce(max(id), 0), now() FROM ledger_entry")
    # Order events whose e-mail is still to be composed (email_status 'pending').
    op.create_index("ix_order_event_email_pending", "order_event", ["id"], unique=False,
                    postgresql_where=sa.text("email_status = 'pending'"))


def downgrade() -> None:
    op.drop_index("ix_order_event_email_pending", table_name="order_event")
    op.drop_table("mail_cursor")
    op.drop_index("ix_mail_message_due", table_name="mail_message")
    op.drop_index(op.f("ix_mail_message_customer_id"), table_name="mail_message")
    op.drop_table("mail_message")
