"""Database side of credit-pack payments: link the PaymentIntent, close an unpaid payment.

The credit grant itself is a Stripe fact (``payments.apply_facts``), applied exactly once.
"""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from billing.stripe_effects import PAYMENT, close_payment
from models.payment_workflows import AttachIntentInput, ClosePaymentInput

log = structlog.get_logger(__name__)


class PaymentStore:
    """``engine``: the async engine (postgresql+asyncpg)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @activity.defn(name="payments.attach_intent")
    async def attach_intent(self, inp: AttachIntentInput) -> None:
        """Store the PaymentIntent id on the payment row (same value on a retry)."""
        async with self.engine.begin() as conn:
            await conn.execute(PAYMENT.update().where(PAYMENT.c.id == inp.payment_id)
                               .values(stripe_payment_intent_id=inp.payment_intent_id))

    @activity.defn(name="payments.close_payment")
    async def close_payment(self, inp: ClosePaymentInput) -> str:
        """``pending`` → ``cancelled``/``failed``; returns the status after (completed stays)."""
        return await close_payment(self.engine, inp.payment_id, inp.status)
