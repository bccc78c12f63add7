"""Orders on a network of telescopes: ``any`` picks by sky, named telescopes are checked, each
refusal moves no credit, prices carry the telescope multiplier, and placed orders keep theirs.

Sites (tests/api/telescope_network.py): ``main`` (Haute-Provence, 43.9° N, the seeded one), ``spain``
(37° N), ``new-mexico`` (33° N, LRGB only) and ``chile`` (30.5° S, ×1.25)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest_asyncio
import sqlalchemy as sa
from astropy.coordinates import get_sun
from astropy.time import Time
from sqlmodel import func, select

from api.services.assignment import Verdict, _best
from models.db import Order, Telescope
from models.temporal_contract import SA_TELESCOPE
from tests.api.conftest import auth
from tests.api.telescope_network import CHILE, NEW_MEXICO, SPAIN, add_sites, network_api


def opposite_the_sun() -> float:
    """RA (hours) that culminates at local midnight this season: observable tonight, any latitude
    that sees its declination."""
    return (get_sun(Time(datetime.now(UTC))).ra.hour + 12.0) % 24.0


def order(dec: float, **extra) -> dict:
    return {"target_name": "Test field", "ra_j2000": round(opposite_the_sun(), 3), "dec_j2000": dec,
            "shots": [{"filter": "L", "exposure": 600, "quantity": 20}], **extra}


@pytest_asyncio.fixture
async def net(engine, database_url, temporal_env, task_queue, tmp_path):
    async with network_api(engine, database_url, temporal_env, task_queue, tmp_path) as h:
        admin = await h.customer(role="admin")
        await add_sites(h, admin.api_key, SPAIN, NEW_MEXICO, CHILE)
        h.admin = admin
        yield h


async def _orders(h) -> int:
    async with h.sessionmaker() as s:
        return (await s.exec(select(func.count()).select_from(Order))).one()


async def test_a_southern_target_goes_to_the_southern_site_only(net):
    c = await net.customer(credits=100)
    r = await net.client.post("/api/orders", json=order(-47.0), headers=auth(c.api_key))
    assert r.status_code == 201, r.text
    placed = r.json()
    assert placed["telescope"] == "chile"
    assert placed["assignment_reason"].startswith("any: chile at Rio Hurtado, next observable window")
    assert "3 online one(s) do not" in placed["assignment_reason"]
    # 20 × 630 s = 3.5 h at the base rate → 4 credits on the reference telescope; × 1.25 = 4.375 → 5.
    assert placed["cost"] == 5
    shown = (await net.client.get(f"/api/orders/{placed['id']}", headers=auth(c.api_key))).json()
    assert (shown["telescope"], shown["assignment_reason"]) == ("chile", placed["assignment_reason"])
    listed = (await net.client.get("/api/orders", headers=auth(c.api_key))).json()["items"]
    assert [o["telescope"] for o in listed] == ["chile"]


async def test_the_order_workflow_carries_the_telescope_search_attribute(net, temporal_env):
    c = await net.customer(credits=100)
    r = await net.client.post("/api/orders", json=order(-47.0), headers=auth(c.api_key))
    assert r.status_code == 201, r.text
    desc = await temporal_env.client.get_workflow_handle(r.json()["workflow_id"]).describe()
    assert desc.typed_search_attributes.get(SA_TELESCOPE) == "chile"


async def test_any_takes_the_earliest_window_among_fitting_telescopes(net):
    c = await net.customer(credits=100)
    target = {"target_name": "Test field", "ra_j2000": round(opposite_the_sun(), 3), "dec_j2000": 0.0,
              "shots": [{"filter": "L", "exposure": 60, "quantity": 1}]}
    starts = {}
    for slug in ("main", "spain", "new-mexico", "chile"):
        r = await net.client.post("/api/pricing/estimate", json={"target": {**target, "telescope": slug}},
                                  headers=auth(c.api_key))
        assert r.status_code == 200, r.text
        starts[slug] = r.json()["next_window"]["start"]
    r = await net.client.post("/api/pricing/estimate", json={"target": target}, headers=auth(c.api_key))
    assert r.status_code == 200, r.text
    asked_last = datetime.now(UTC)

    # A window open now starts at each request's own "now": all such starts are the same instant.
    def when(start: str) -> datetime:
        return max(datetime.fromisoformat(start.replace("Z", "+00:00")), asked_last)

    chosen = r.json()["telescope"]
    assert when(starts[chosen["slug"]]) == min(map(when, starts.values()))
    assert chosen["reason"].startswith(f"any: {chosen['slug']}")
    assert when(r.json()["next_window"]["start"]) == when(starts[chosen["slug"]])


def _verdict(slug: str, start: float | None, ahead: int) -> Verdict:
    return Verdict(Telescope(slug=slug), window=None if start is None else (start, start + 3600), orders_ahead=ahead)


def test_ties_go_to_the_telescope_with_fewer_orders_ahead_then_the_slug():
    assert _best([_verdict("a", 100.0, 3), _verdict("b", 100.0, 1), _verdict("c", 200.0, 0)]).telescope.slug == "b"
    assert _best([_verdict("b", 100.0, 1), _verdict("a", 100.0, 1)]).telescope.slug == "a"
    assert _best([_verdict("a", None, 0), _verdict("b", 5.0, 9)]).telescope.slug == "b"


async def test_a_target_no_site_can_see_is_422_saying_why_per_telescope(net):
    c = await net.customer(credits=100)
    # Dec −47° culminates at 73.5° from Chile and below 11° from every northern site: above 80°, never.
    r = await net.client.post("/api/orders", json=order(-47.0, c_alt_min=80, target_name="NGC 5139"),
                              headers=auth(c.api_key))
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "target_never_observable"
    assert {k for k in err["fields"] if k.startswith("telescope.")} == \
        {"telescope.main", "telescope.spain", "telescope.new-mexico", "telescope.chile"}
    assert err["fields"]["telescope.chile"].startswith("NGC 5139 never rises above 80° in darkness at Rio Hurtado")
    assert "at OHP (main)" in err["message"] and err["fields"]["c_alt_min"] == err["message"]
    assert await _orders(net) == 0 and (await net.ledger.balances(c.customer_id)).available == 100


async def test_named_telescope_refusals_move_no_credit(net):
    c = await net.customer(credits=100)
    r = await net.client.post("/api/orders", json=order(10.0, telescope="nowhere"), headers=auth(c.api_key))
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_telescope"

    r = await net.client.post("/api/admin/telescopes/spain/disable", headers=auth(net.admin.api_key))
    assert r.status_code == 200
    r = await net.client.post("/api/orders", json=order(10.0, telescope="spain"), headers=auth(c.api_key))
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "telescope_unavailable"
    assert err["message"].startswith("telescope spain is in maintenance; telescopes that can take this order: ")
    assert "main" in err["message"] and "spain," not in err["message"]

    ha = {**order(10.0, telescope="new-mexico"), "shots": [{"filter": "Ha", "exposure": 300, "quantity": 2}]}
    r = await net.client.post("/api/orders", json=ha, headers=auth(c.api_key))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["fields"]["shots.0.filter"] == "unknown filter 'Ha'; telescope new-mexico has L, R, G, B"

    r = await net.client.post("/api/orders", json=order(-47.0, telescope="spain"), headers=auth(c.api_key))
    assert r.status_code == 409  # in maintenance comes first
    r = await net.client.post("/api/orders", json=order(-47.0, telescope="new-mexico"), headers=auth(c.api_key))
    assert r.status_code == 422 and r.json()["error"]["code"] == "target_never_observable"
    assert "at Mayhill (new-mexico)" in r.json()["error"]["message"]

    r = await net.client.post("/api/orders", json=order(10.0, min_field_arcmin=600), headers=auth(c.api_key))
    assert r.status_code == 422 and r.json()["error"]["code"] == "no_telescope_fits"
    assert "narrower than the 600′" in r.json()["error"]["fields"]["telescope.chile"]
    assert await _orders(net) == 0 and (await net.ledger.balances(c.customer_id)).available == 100


async def test_the_price_carries_the_multiplier_and_placed_orders_keep_theirs(net):
    c = await net.customer(credits=100)
    est = await net.client.post("/api/pricing/estimate", json={"target": {
        **{k: v for k, v in order(-47.0).items() if k != "telescope"}}}, headers=auth(c.api_key))
    assert est.status_code == 200, est.text
    e = est.json()
    assert e["telescope"]["slug"] == "chile" and e["telescope"]["price_multiplier"] == "1.2500"
    assert e["estimation"]["multipliers"]["telescope"] == 1.25 and e["estimation"]["final_cost"] == 5

    on_main = await net.client.post("/api/orders", json=order(10.0, telescope="main"), headers=auth(c.api_key))
    on_chile = await net.client.post("/api/orders", json=order(-47.0, telescope="chile"), headers=auth(c.api_key))
    assert (on_main.status_code, on_chile.status_code) == (201, 201), (on_main.text, on_chile.text)
    assert (on_main.json()["cost"], on_chile.json()["cost"]) == (4, 5)
    assert on_chile.json()["assignment_reason"].startswith("named: chile at Rio Hurtado")

    r = await net.client.patch("/api/admin/telescopes/chile", json={"price_multiplier": "2", "status": "maintenance"},
                               headers=auth(net.admin.api_key))
    assert r.status_code == 200, r.text
    kept = (await net.client.get(f"/api/orders/{on_chile.json()['id']}", headers=auth(c.api_key))).json()
    assert (kept["telescope"], kept["cost"]) == ("chile", 5)
    async with net.sessionmaker() as s:
        row = await s.get(Order, on_chile.json()["id"])
        assert row.price_multiplier == Decimal("1.25")


async def test_the_workflows_hold_prices_with_the_multiplier_copied_onto_the_order(net):
    from temporalio.testing import ActivityEnvironment

    from activities.ledger_ops import LedgerActivities
    from models.orders import HoldRequest

    c = await net.customer(credits=100)
    placed = await net.client.post("/api/orders", json=order(-47.0, telescope="chile"), headers=auth(c.api_key))
    assert placed.status_code == 201, placed.text
    # The telescope's multiplier changes after the order was placed: the hold keeps the copied ×1.25.
    r = await net.client.patch("/api/admin/telescopes/chile", json={"price_multiplier": "3"},
                               headers=auth(net.admin.api_key))
    assert r.status_code == 200
    ledger = LedgerActivities(net.ledger, net.sessionmaker, net.settings)
    hold = await ActivityEnvironment().run(ledger.price_and_hold, HoldRequest(order_id=placed.json()["id"]))
    assert (hold.cost, hold.credits_held) == (5, 5)
    assert (await net.ledger.balances(c.customer_id)).held == 5


async def test_a_telescope_changed_elsewhere_is_seen_by_the_next_order_and_a_poll_stamp_costs_no_read(net):
    """The API keeps the telescope rows under their fingerprint, read with the caller's key
    (api/services/order_context.py): a change by another process — here plain SQL, the way the CLI
    or another API process would, without this one being told — is seen by the very next order;
    the monitor's ``last_seen_at`` stamp is not a change and costs no read of the rows."""
    from bench._sql_count import count_sql

    c = await net.customer(credits=100)
    r = await net.client.post("/api/orders", json=order(-47.0), headers=auth(c.api_key))
    assert (r.status_code, r.json()["telescope"], r.json()["cost"]) == (201, "chile", 5), r.text

    async def set_chile(**values) -> None:
        async with net.engine.begin() as conn:
            await conn.execute(sa.update(Telescope).where(Telescope.slug == "chile").values(**values))

    await set_chile(last_seen_at=datetime.now(UTC))
    with count_sql(net.engine) as counted:
        r = await net.client.post("/api/orders", json=order(-47.0), headers=auth(c.api_key))
    assert (r.status_code, r.json()["telescope"]) == (201, "chile"), r.text
    assert counted.statements == 2  # the key with the order's context; the order: no telescope read

    await set_chile(status="maintenance")
    placed = await _orders(net)
    r = await net.client.post("/api/orders", json=order(-47.0), headers=auth(c.api_key))
    assert r.status_code == 422 and r.json()["error"]["code"] == "target_never_observable", r.text
    assert "telescope.chile" not in r.json()["error"]["fields"]
    r = await net.client.post("/api/orders", json=order(-47.0, telescope="chile"), headers=auth(c.api_key))
    assert r.status_code == 409 and r.json()["error"]["code"] == "telescope_unavailable", r.text
    assert await _orders(net) == placed

    # Back online with another multiplier: the fingerprint is the first one's again but for the
    # multiplier, and the next order is priced with the new one (7 credits at ×2, 5 at ×1.25).
    await set_chile(status="online", price_multiplier=Decimal(2))
    r = await net.client.post("/api/orders", json=order(-47.0), headers=auth(c.api_key))
    assert (r.status_code, r.json()["telescope"], r.json()["cost"]) == (201, "chile", 7), r.text
    await set_chile(price_multiplier=Decimal("1.25"))
    r = await net.client.post("/api/orders", json=order(-47.0), headers=auth(c.api_key))
    assert (r.status_code, r.json()["cost"]) == (201, 5), r.text
