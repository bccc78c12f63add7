"""ledger words mean one thing each: credits are released, a resolved hold is captured or released

Renames ``order.credits_refunded`` to ``order.credits_released``, a hold's status ``settled`` to
``captured`` (hold → capture / release, docs/pricing.md §5; "refund" is money returned after a
payment, "settle" the policy step), and the ``credits_refunded`` key of the stored order reports
(``order.report`` and the final ``order_event`` payload's ``report``) to ``credits_released``.
Adds ``order.abort_role`` (``customer`` | ``support``): the kind of the abort that took effect,
which the workflow now receives explicitly; existing aborted orders get the kind their
``aborted_by`` meant until now (a ``support``/``admin`` requester was a support abort). Values are
kept.

Revision ID: 0012_release_vocab
Revises: 0011_mosaic
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

revision = "0012_release_vocab"
down_revision = "0011_mosaic"
branch_labels = None
depends_on = None


def _rename_report_key(old: str, new: str) -> None:
    op.execute(f"""
        UPDATE "order" SET report = (report - '{old}') || jsonb_build_object('{new}', report -> '{old}')
        WHERE report ? '{old}'""")
    op.execute(f"""
        UPDATE order_event SET payload = jsonb_set(payload, '{{report}}',
            ((payload -> 'report') - '{old}') || jsonb_build_object('{new}', (payload -> 'report') -> '{old}'))
        WHERE jsonb_typeof(payload -> 'report') = 'object' AND (payload -> 'report') ? '{old}'""")


def upgrade() -> None:
    op.alter_column("order", "credits_refunded", new_column_name="credits_released")
    op.execute("UPDATE credit_hold SET status = 'captured' WHERE status = 'settled'")
    _rename_report_key("credits_refunded", "credits_released")
    op.add_column("order", sa.Column("abort_role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
    op.execute("""
        UPDATE "order" SET abort_role = CASE WHEN lower(aborted_by) LIKE 'support%' OR lower(aborted_by) LIKE 'admin%'
                                             THEN 'support' ELSE 'customer' END
        WHERE aborted_by IS NOT NULL""")


def downgrade() -> None:
    op.drop_column("order", "abort_role")
    _rename_report_key("credits_released", "credits_refunded")
    op.execute("UPDATE credit_hold SET status = 'settled' WHERE status = 'captured'")
    op.alter_column("order", "credits_released", new_column_name="credits_refunded")
