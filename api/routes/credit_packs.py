"""``/api/credit-packs``: the pack catalogue and buying a pack (docs/pricing.md §7:
packages 10/50/100/200 credits with 0/5/15/40 bonus; a purchase goes pending → completed)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path

from api.deps import PrincipalDep, ResourcesDep, TemporalDep
from api.services import payments as service
from billing import packs
from api.schemas.payments import PackCatalogueOut, PurchaseIn, PurchaseOut

router = APIRouter(prefix="/api/credit-packs", tags=["credit packs"])


@router.get("", response_model=PackCatalogueOut, summary="The credit packs (public)")
async def list_packs() -> PackCatalogueOut:
    """Prices in cents; pack credits never expire."""
    return PackCatalogueOut.of(packs.packs())


@router.post("/{pack}/purchase", status_code=201, response_model=PurchaseOut, summary="Buy a credit pack",
             responses=service.payment_errors(404, 502, 503))
async def purchase(
    pack: Annotated[str, Path(max_length=32, description="pack id, e.g. 50")],
    me: PrincipalDep, res: ResourcesDep, client: TemporalDep,
    body: Annotated[PurchaseIn | None, Body()] = None,
) -> PurchaseOut:
    """Creates a ``pending`` payment and a Stripe PaymentIntent; returns its ``client_secret`` for
    Stripe.js. The credits are added once Stripe reports the payment succeeded; a failed payment,
    or none within 24 h, cancels the record. With ``payment_method_id`` (a saved card) the payment
    is confirmed server-side and the answer already shows the outcome."""
    return await service.purchase_pack(res, client, me.customer_id, pack, body.payment_method_id if body else None)
