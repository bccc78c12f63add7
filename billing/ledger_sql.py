"""The two-phase ledger's hot statements, one round trip each (billing/ledger.py uses them).

A hold is one statement: lock the account row, check the order has no hold yet, no debt and enough
available credits, move them available → held (subscription first), insert the hold and its
entries. A settle (capture or release) is one statement too, :data:`SETTLE_ONE_STATEMENT`: lock
the account, then the hold (the ledger's lock order, so concurrent operations cannot deadlock),
split the hold into capture / release / expire entries, write account, hold, entries and the
customer↔telescope totals, and look up the order's telescope host. It writes nothing and says so
when the capture earns a host its share (billing/host_earnings.py runs in Python, in the capture's
transaction) or when its snapshot may miss an ``expire`` entry (below); the caller then settles in
one transaction of two statements: :data:`LOCK_HOLD`, then :data:`SETTLE_WRITE` with the entries it
computed, then the host credit.

Why ``SELECT … FOR UPDATE`` inside the statement and the arithmetic on the locked row: under READ
COMMITTED the row lock waits for a concurrent writer and then returns the row's latest version, and
PostgreSQL re-checks the ``UPDATE`` on that version (EvalPlanQual), so availability is checked and
reserved atomically — no overdraft — in one round trip instead of one per step (docs/pricing.md §5).

What a single statement cannot see: its plain reads use the snapshot taken when it started, while a
row lock returns the row's latest version. Every ledger operation on a customer updates the account
row, so when the locked account row is the version the snapshot holds (same ``xmin``) the snapshot
saw every ledger entry of that customer; otherwise (an operation committed meanwhile) the settle's
expiry check — an ``expire`` entry after the hold, read from the snapshot — may be stale, and the
statement defers to the transactional path whenever that check matters (subscription credits to
release).
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


#: Parameters: order_id, capture (credits, ≥ 0; NULL = release everything), reference_id (the
#: order id as text), actor, reason (of the capture/release entries; "" = "<kind> for order <id>").
#: One row back:
#: ``hold_id`` NULL — the order has no hold; ``status`` — the hold's status when locked (not
#: ``open``: resolved before, the row is that resolution); ``amount`` < ``captured``: refused;
#: ``written`` — settled here (``new_*`` are the resolved hold); else ``host_customer_id`` set (a
#: host earns on this capture) or the snapshot is stale: settle through the transactional path.
SETTLE_ONE_STATEMENT = sa.text("""
WITH p AS (
    SELECT CAST(:order_id AS bigint) AS order_id, CAST(:capture AS bigint) AS capture,
           CAST(:reference_id AS text) AS ref
), acct AS (
    SELECT a.customer_id, a.subscription_credits AS sub, a.pack_credits AS pack, a.held, a.debt, a.xmin AS version
    FROM credit_account a
    WHERE a.customer_id = (SELECT h.customer_id FROM credit_hold h, p WHERE h.order_id = p.order_id)
    FOR UPDATE
), seen AS (  -- the account row as this statement's snapshot has it (no lock: no wait)
    SELECT a.xmin AS version FROM credit_account a, acct WHERE a.customer_id = acct.customer_id
), locked AS (
    SELECT h.id, h.customer_id, h.order_id, h.amount, h.from_subscription, h.from_pack, h.status, h.captured,
           h.released, acct.sub, acct.pack, acct.held, acct.debt,
           acct.version = (SELECT version FROM seen) AS fresh
    FROM credit_hold h JOIN acct ON acct.customer_id = h.customer_id, p
    WHERE h.order_id = p.order_id
    FOR UPDATE OF h
), split AS (  -- docs/pricing.md §5: a capture takes the subscription part first
    SELECT l.*, COALESCE(p.capture, 0) AS take, LEAST(COALESCE(p.capture, 0), l.from_subscription) AS cap_sub
    FROM locked l, p
), parts AS (
    SELECT s.*, s.take - s.cap_sub AS cap_pack, s.from_subscription - s.cap_sub AS rel_sub,
           s.from_pack - (s.take - s.cap_sub) AS rel_pack, s.sub + s.pack - s.debt AS available
    FROM split s
), tel AS (
    SELECT o.telescope_id, t.host_customer_id
    FROM "order" o JOIN telescope t ON t.id = o.telescope_id, p
    WHERE o.id = p.order_id
), go AS (
    SELECT x.*, tel.telescope_id, tel.host_customer_id,
           x.status = 'open' AND x.take <= x.amount AND (x.take = 0 OR tel.host_customer_id IS NULL)
               AND (x.rel_sub = 0 OR x.fresh) AS write,
           -- the subscription ended while these credits were held: they expire as they are released
           x.rel_sub > 0 AND EXISTS (
               SELECT 1 FROM ledger_entry e
               WHERE e.customer_id = x.customer_id AND e.kind = 'expire' AND e.reference_type <> 'order'
                 AND e.id > (SELECT id FROM ledger_entry
                             WHERE idempotency_key = 'order:' || p.ref || ':hold:subscription')
           ) AS expired
    FROM parts x CROSS JOIN p LEFT JOIN tel ON true
), account_update AS (
    UPDATE credit_account a
    SET subscription_credits = a.subscription_credits + g.rel_sub - CASE WHEN g.expired THEN g.rel_sub ELSE 0 END,
        pack_credits = a.pack_credits + g.rel_pack, held = a.held - g.amount, updated_at = now()
    FROM go g
    WHERE a.customer_id = g.customer_id AND g.write
), entries AS (
    INSERT INTO ledger_entry (customer_id, kind, bucket, amount, balance_before, balance_after, held_before,
                              held_after, reference_type, reference_id, idempotency_key, actor, reason,
                              created_at)
    SELECT g.customer_id, e.kind, e.bucket, e.amount, e.balance_before, e.balance_before + e.amount,
           e.held_before, e.held_before - e.held_change, 'order', p.ref,
           'order:' || p.ref || ':' || e.kind || ':' || e.bucket, CAST(:actor AS text),
           CASE WHEN e.kind = 'expire' THEN 'subscription ended while held for order ' || p.ref
                ELSE COALESCE(NULLIF(CAST(:reason AS text), ''), e.kind || ' for order ' || p.ref) END, now()
    FROM go g CROSS JOIN p CROSS JOIN LATERAL (VALUES
        (1, 'capture', 'subscription', g.cap_sub, 0, g.cap_sub, g.available, g.held),
        (2, 'capture', 'pack', g.cap_pack, 0, g.cap_pack, g.available, g.held - g.cap_sub),
        (3, 'release', 'subscription', g.rel_sub, g.rel_sub, g.rel_sub, g.available, g.held - g.take),
        (4, 'release', 'pack', g.rel_pack, g.rel_pack, g.rel_pack, g.available + g.rel_sub,
         g.held - g.take - g.rel_sub),
        (5, 'expire', 'subscription', CASE WHEN g.expired THEN g.rel_sub ELSE 0 END, -g.rel_sub, 0,
         g.available + g.rel_sub + g.rel_pack, g.held - g.amount)
    ) AS e(position, kind, bucket, part, amount, held_change, balance_before, held_before)
    WHERE g.write AND e.part > 0
    ORDER BY e.position
), totals AS (  -- billing/host_earnings.py: the customer↔telescope totals of a capture
    INSERT INTO customer_telescope_total (customer_id, telescope_id, first_observation_at, last_observation_at,
                                          credits_captured, orders)
    SELECT g.customer_id, g.telescope_id, now(), now(), g.take, 1 FROM go g
    WHERE g.write AND g.take > 0 AND g.telescope_id IS NOT NULL
    ON CONFLICT (customer_id, telescope_id) DO UPDATE
    SET last_observation_at = now(),
        credits_captured = customer_telescope_total.credits_captured + EXCLUDED.credits_captured,
        orders = customer_telescope_total.orders + 1
), resolved AS (
    UPDATE credit_hold h
    SET status = CASE WHEN p.capture IS NULL THEN 'released' ELSE 'captured' END, captured = g.take,
        released = g.amount - g.take, resolved_at = now()
    FROM go g, p
    WHERE h.id = g.id AND g.write
    RETURNING h.status, h.captured, h.released
)
SELECT g.id AS hold_id, g.customer_id, g.order_id, g.amount, g.from_subscription, g.from_pack, g.status,
       g.captured, g.released, g.take, g.host_customer_id, g.fresh, g.expired,
       r.status IS NOT NULL AS written, r.status AS new_status, r.captured AS new_captured,
       r.released AS new_released
FROM p LEFT JOIN go g ON true LEFT JOIN resolved r ON true
""")
