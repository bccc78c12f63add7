"""The two-phase ledger's hot statements, one round trip each (billing/ledger.py uses them).

A hold is one statement: lock the account row, check the order has no hold yet, no debt and enough
available credits, move them available → held (subscription first), insert the hold and its
entries. A settle (capture or release) is two: :data:`LOCK_HOLD` locks the account, then the hold
(the ledger's lock order, so concurrent operations cannot deadlock) and reads both; the caller
computes the entries and writes account, hold and entries in one statement (:data:`SETTLE_WRITE`).

Why ``SELECT … FOR UPDATE`` inside the statement and the arithmetic on the locked row: under READ
COMMITTED the row lock waits for a concurrent writer and then returns the row's latest version, and
PostgreSQL re-checks the ``UPDATE`` on that version (EvalPlanQual), so availability is checked and
reserved atomically — no overdraft — in one round trip instead of one per step (docs/pricing.md §5).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


#: Parameters: customer_id, order_id, amount (≥ 1), actor, reason, reference_id (the order id as
#: text), key_subscription / key_pack (the entries' idempotency keys). One row back: ``new_*`` set
#: when the hold was made; else ``prior_*`` (this order already holds) or the account's state
#: (``has_account``, ``subscription``, ``pack``, ``debt``) saying why not.
HOLD_ONE_STATEMENT = sa.text("""
WITH p AS (
    SELECT CAST(:customer_id AS integer) AS customer_id, CAST(:order_id AS bigint) AS order_id,
           CAST(:amount AS bigint) AS amount
), prior AS (
    SELECT h.customer_id, h.amount, h.from_subscription, h.from_pack, h.status
    FROM credit_hold h, p WHERE h.order_id = p.order_id
), old AS (
    SELECT a.customer_id, a.subscription_credits AS sub, a.pack_credits AS pack, a.held, a.debt
    FROM credit_account a, p WHERE a.customer_id = p.customer_id
    FOR UPDATE OF a
), moved AS (
    UPDATE credit_account a
    SET subscription_credits = a.subscription_credits - LEAST(p.amount, a.subscription_credits),
        pack_credits = a.pack_credits - (p.amount - LEAST(p.amount, a.subscription_credits)),
        held = a.held + p.amount,
        updated_at = now()
    FROM old, p
    WHERE a.customer_id = old.customer_id AND a.debt = 0
      AND a.subscription_credits + a.pack_credits >= p.amount
      AND NOT EXISTS (SELECT 1 FROM prior)
    RETURNING old.sub + old.pack AS available, old.held, LEAST(p.amount, old.sub) AS from_sub
), hold AS (
    INSERT INTO credit_hold (customer_id, order_id, amount, from_subscription, from_pack, status, captured,
                             released, created_at)
    SELECT p.customer_id, p.order_id, p.amount, m.from_sub, p.amount - m.from_sub, 'open', 0, 0, now()
    FROM moved m, p
    RETURNING from_subscription, from_pack
), entries AS (
    INSERT INTO ledger_entry (customer_id, kind, bucket, amount, balance_before, balance_after, held_before,
                              held_after, reference_type, reference_id, idempotency_key, actor, reason,
                              created_at)
    SELECT p.customer_id, 'hold', e.bucket, -e.part, e.balance_before, e.balance_before - e.part,
           e.held_before, e.held_before + e.part, 'order', CAST(:reference_id AS text), e.idempotency_key,
           CAST(:actor AS text), CAST(:reason AS text), now()
    FROM moved m CROSS JOIN p CROSS JOIN LATERAL (VALUES
        (1, 'subscription', m.from_sub, m.available, m.held, CAST(:key_subscription AS text)),
        (2, 'pack', p.amount - m.from_sub, m.available - m.from_sub, m.held + m.from_sub, CAST(:key_pack AS text))
    ) AS e(position, bucket, part, balance_before, held_before, idempotency_key)
    WHERE e.part > 0
    ORDER BY e.position
)
SELECT hold.from_subscription AS new_from_subscription, hold.from_pack AS new_from_pack,
       prior.customer_id AS prior_customer_id, prior.amount AS prior_amount,
       prior.from_subscription AS prior_from_subscription, prior.from_pack AS prior_from_pack,
       prior.status AS prior_status,
       old.customer_id IS NOT NULL AS has_account, old.sub AS subscription, old.pack, old.debt
FROM p LEFT JOIN hold ON true LEFT JOIN prior ON true LEFT JOIN old ON true
""")

#: Parameter: order_id. Locks the account of the order's hold, then the hold (in that order), and
#: returns the hold's columns with the account's ``account_subscription``, ``account_pack``,
#: ``account_held``, ``account_debt``. No row: the order has no hold.
LOCK_HOLD = sa.text("""
WITH acct AS (
    SELECT customer_id, subscription_credits, pack_credits, held, debt FROM credit_account
    WHERE customer_id = (SELECT customer_id FROM credit_hold WHERE order_id = CAST(:order_id AS bigint))
    FOR UPDATE
)
SELECT h.id, h.customer_id, h.order_id, h.amount, h.from_subscription, h.from_pack, h.status, h.captured,
       h.released, a.subscription_credits AS account_subscription, a.pack_credits AS account_pack,
       a.held AS account_held, a.debt AS account_debt
FROM credit_hold h JOIN acct a ON a.customer_id = h.customer_id
WHERE h.order_id = CAST(:order_id AS bigint)
FOR UPDATE OF h
""")


#: The entry columns :func:`settle_write` takes as arrays (one element per entry, in order).
_ENTRY_ARRAYS = (("kind", "text"), ("bucket", "text"), ("amount", "bigint"), ("balance_before", "bigint"),
                 ("balance_after", "bigint"), ("held_before", "bigint"), ("held_after", "bigint"),
                 ("reference_type", "text"), ("reference_id", "text"), ("idempotency_key", "text"),
                 ("actor", "text"), ("reason", "text"))
_COLUMNS = ", ".join(name for name, _ in _ENTRY_ARRAYS)

#: One statement of a fixed shape (compiled once, whatever the number of entries): the account's
#: new values, the entries from arrays (``unnest … WITH ORDINALITY``: ids in the given order), and
#: the hold's resolution, ``RETURNING`` the hold row.
SETTLE_WRITE = sa.text(f"""
WITH account_update AS (
    UPDATE credit_account
    SET subscription_credits = CAST(:subscription AS bigint), pack_credits = CAST(:pack AS bigint),
        held = CAST(:held AS bigint), debt = CAST(:debt AS bigint), updated_at = now()
    WHERE customer_id = CAST(:customer_id AS integer)
), entries AS (
    INSERT INTO ledger_entry (customer_id, {_COLUMNS}, created_at)
    SELECT CAST(:customer_id AS integer), {_COLUMNS}, now()
    FROM unnest({", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in _ENTRY_ARRAYS)})
         WITH ORDINALITY AS e({_COLUMNS}, position)
    ORDER BY e.position
)
UPDATE credit_hold
SET status = CAST(:status AS varchar), captured = CAST(:captured AS integer),
    released = CAST(:released AS integer), resolved_at = now()
WHERE id = CAST(:hold_id AS integer)
RETURNING id, customer_id, order_id, amount, from_subscription, from_pack, status, captured, released
""")


def settle_params(customer_id: int, hold_id: int, account: dict[str, int], hold: dict[str, Any],
                  entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Parameters of :data:`SETTLE_WRITE`. ``account``: the new subscription, pack, held, debt;
    ``hold``: the new status, captured, released; ``entries``: rows as ``Ledger._entry`` builds
    them (their ``customer_id`` and ``created_at`` are the statement's)."""
    return {"customer_id": customer_id, "hold_id": hold_id, **account, **hold,
            **{name: [e[name] for e in entries] for name, _ in _ENTRY_ARRAYS}}
