"""host earnings: grants carry their money value; hosts earn their share of captured credits

Creates ``credit_grant`` (one lot per grant: credits, value in cents, what a refund reversed, how
much was consumed), ``capture_allocation`` (which lots an order's captured credits came from),
``host_payout``, ``host_earning_entry`` (the double-entry host ledger), ``customer_telescope_total``
and ``host_customer_alias`` (hosts see customers under a random stable id); adds
``customer.stripe_connect_account_id``. See docs/host-earnings.md.

Existing grants get their **computable value**: a pack grant (``payment:<id>``) the payment's
price, a subscription grant (``invoice:<id>``) the amount its invoice payment recorded (0 when none
was recorded), a support adjustment 0; a reversed charge's refunded and withdrawn-disputed cents
are recorded as reversed. Captures made before this revision earned nothing and are not
re-credited: the lots' ``consumed``/``gone`` start at 0 and the next capture of each customer takes
the credits no longer in a bucket as gone, oldest first (docs/host-earnings.md §1).

Revision ID: 0013_host_earnings
Revises: 0012_release_vocab
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

revision = "0013_host_earnings"
down_revision = "0012_release_vocab"
branch_labels = None
depends_on = None

_S = sqlmodel.sql.sqltypes.AutoString
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("customer", sa.Column("stripe_connect_account_id", _S(length=255), nullable=True))
    op.create_table(
        "credit_grant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("ledger_entry_id", sa.Integer(), nullable=True),
        sa.Column("grant_key", sa.String(length=255), nullable=False),
        sa.Column("bucket", _S(length=16), nullable=False),
        sa.Column("source", _S(length=16), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("value_cents", sa.BigInteger(), nullable=False),
        sa.Column("reversed_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("consumed", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("gone", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("credits > 0", name="ck_grant_credits_positive"),
        sa.CheckConstraint("value_cents >= 0 AND reversed_cents BETWEEN 0 AND value_cents", name="ck_grant_value"),
        sa.CheckConstraint("consumed >= 0 AND gone >= 0 AND consumed + gone <= credits", name="ck_grant_not_over"),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["ledger_entry_id"], ["ledger_entry.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("grant_key"),
        sa.UniqueConstraint("ledger_entry_id"),
    )
    op.create_index(op.f("ix_credit_grant_customer_id"), "credit_grant", ["customer_id"])
    op.create_table(
        "capture_allocation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("grant_id", sa.Integer(), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("credits > 0", name="ck_allocation_positive"),
        sa.ForeignKeyConstraint(["grant_id"], ["credit_grant.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id", "grant_id", name="uq_capture_allocation"),
    )
    op.create_index(op.f("ix_capture_allocation_order_id"), "capture_allocation", ["order_id"])
    op.create_index(op.f("ix_capture_allocation_grant_id"), "capture_allocation", ["grant_id"])
    op.create_table(
        "host_payout",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host_customer_id", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("method", _S(length=16), nullable=False),
        sa.Column("reference", _S(length=255), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("actor", _S(length=255), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("amount_cents > 0", name="ck_payout_positive"),
        sa.ForeignKeyConstraint(["host_customer_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_index(op.f("ix_host_payout_host_customer_id"), "host_payout", ["host_customer_id"])
    op.create_table(
        "host_earning_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("transfer_key", sa.String(length=255), nullable=False),
        sa.Column("account", _S(length=64), nullable=False),
        sa.Column("host_customer_id", sa.Integer(), nullable=False),
        sa.Column("kind", _S(length=16), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=True),
        sa.Column("telescope_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("share_percent", sa.Integer(), nullable=True),
        sa.Column("payout_id", sa.Integer(), nullable=True),
        sa.Column("reason", _S(length=500), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["host_customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["telescope_id"], ["telescope.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["payout_id"], ["host_payout.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_index(op.f("ix_host_earning_entry_transfer_key"), "host_earning_entry", ["transfer_key"])
    op.create_index(op.f("ix_host_earning_entry_host_customer_id"), "host_earning_entry", ["host_customer_id"])
    op.create_index(op.f("ix_host_earning_entry_order_id"), "host_earning_entry", ["order_id"])
    op.create_table(
        "customer_telescope_total",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("telescope_id", sa.Integer(), nullable=False),
        sa.Column("first_observation_at", _TS, nullable=False),
        sa.Column("last_observation_at", _TS, nullable=False),
        sa.Column("credits_captured", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["telescope_id"], ["telescope.id"]),
        sa.PrimaryKeyConstraint("customer_id", "telescope_id"),
    )
    op.create_table(
        "host_customer_alias",
        sa.Column("host_customer_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["host_customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("host_customer_id", "customer_id"),
        sa.UniqueConstraint("alias"),
    )
    # Existing grants: their computable value (module docstring).
    op.execute("""
        INSERT INTO credit_grant (customer_id, ledger_entry_id, grant_key, bucket, source, credits, value_cents,
                                  reversed_cents, consumed, gone, created_at)
        SELECT e.customer_id, e.id, e.idempotency_key, e.bucket,
               CASE WHEN e.kind = 'adjustment' THEN 'support'
                    WHEN e.idempotency_key LIKE 'payment:%' THEN 'pack'
                    WHEN e.idempotency_key LIKE 'invoice:%' THEN 'subscription'
                    ELSE 'promotion' END,
               e.amount,
               CASE WHEN e.kind <> 'grant' THEN 0
                    WHEN e.idempotency_key LIKE 'payment:%' THEN COALESCE(
                        (SELECT p.amount_cents FROM payment p WHERE 'payment:' || p.id = e.idempotency_key), 0)
                    WHEN e.idempotency_key LIKE 'invoice:%' THEN COALESCE(
                        (SELECT max(ip.amount_cents) FROM invoice_payment ip
                         WHERE 'invoice:' || ip.invoice_id = e.idempotency_key), 0)
                    ELSE 0 END,
               0, 0, 0, e.created_at
        FROM ledger_entry e
        WHERE e.kind IN ('grant', 'adjustment') AND e.amount > 0 AND e.bucket IN ('subscription', 'pack')""")
    op.execute("""
        UPDATE credit_grant g SET reversed_cents = g.value_cents * LEAST(r.charge_amount_cents, r.refunded_cents + COALESCE((
            SELECT sum(d.amount_cents) FROM payment_dispute d
            WHERE d.charge_id = r.charge_id AND d.status IN ('needs_response', 'under_review', 'lost')), 0))
            / r.charge_amount_cents
        FROM payment_reversal r WHERE r.grant_key = g.grant_key AND r.charge_amount_cents > 0""")


def downgrade() -> None:
    op.drop_table("host_customer_alias")
    op.drop_table("customer_telescope_total")
    op.drop_table("host_earning_entry")
    op.drop_table("host_payout")
    op.drop_table("capture_allocation")
    op.drop_table("credit_grant")
    op.drop_column("customer", "stripe_connect_account_id")
