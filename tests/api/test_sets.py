"""Customer Sets through the API (no worker: the Voyager side is tests/api/test_sets_e2e.py):
Quasar names, renames, pauses and deletes Sets and places orders in them; every refusal is the one
error body, creates nothing and moves no credit."""

from __future__ import annotations

from sqlmodel import func, select

from models.customer_sets import default_set_guid
from models.db import CustomerSet, LedgerEntry, Order
from tests.api.conftest import auth

ORDER = {"target_name": "M42", "ra_j2000": 5.588, "dec_j2000": -5.39, "priority": 2,
         "shots": [{"filter": "L", "exposure": 60, "quantity": 10}]}


def refused(r, status: int, code: str, field: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code, body
    if field:
        assert field in body["error"]["fields"], body
    return body["error"]


async def counts(api, customer_id: int) -> tuple[int, int, int]:
    """(orders, ledger entries, available credits) of a customer: what a refusal must not change."""
    async with api.sessionmaker() as s:
        orders = (await s.exec(select(func.count()).select_from(Order).where(Order.customer_id == customer_id))).one()
        entries = (await s.exec(select(func.count()).select_from(LedgerEntry)
                                .where(LedgerEntry.customer_id == customer_id))).one()
    return orders, entries, (await api.ledger.balances(customer_id)).available


async def test_quasar_names_renames_pauses_and_lists_sets(api):
    q = await api.customer(plan="quasar")
    r = await api.client.get("/api/sets", headers=auth(q.api_key))
    assert r.status_code == 200, r.text
    [default] = r.json()["items"]
    assert default["is_default"] and default["guid"] == default_set_guid(q.customer_id)
    assert default["tag"] == f"user_{q.customer_id}" and default["paused"] is False

    key = {**auth(q.api_key), "Idempotency-Key": "set-1"}
    r = await api.client.post("/api/sets", json={"name": "Galaxies"}, headers=key)
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["name"], made["paused"], made["is_default"], made["tag"]) == (
        "Galaxies", False, False, f"user_{q.customer_id}")
    assert made["voyager_synced"] is False  # no worker here: the change waits for Voyager
    again = await api.client.post("/api/sets", json={"name": "Galaxies"}, headers=key)
    assert again.status_code == 200 and again.json()["id"] == made["id"]
    refused(await api.client.post("/api/sets", json={"name": "galaxies"}, headers=auth(q.api_key)),
            409, "set_name_taken", "name")

    r = await api.client.patch(f"/api/sets/{made['id']}", json={"name": "Nebulae", "paused": True},
                               headers=auth(q.api_key))
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["paused"]) == ("Nebulae", True)
    async with api.sessionmaker() as s:
        row = await s.get(CustomerSet, made["id"])
        assert (row.version, row.synced_version) == (2, 0)
    r = await api.client.get(f"/api/sets/{made['id']}", headers=auth(q.api_key))
    assert r.json()["paused"] is True and r.json()["open_orders"] == 0
    names = [s["name"] for s in (await api.client.get("/api/sets", headers=auth(q.api_key))).json()["items"]]
    assert names == [f"User_{q.customer_id}", "Nebulae"]

    refused(await api.client.patch(f"/api/sets/{made['id']}", json={}, headers=auth(q.api_key)),
            422, "validation_error")
    refused(await api.client.post("/api/sets", json={"name": ""}, headers=auth(q.api_key)),
            422, "validation_error", "name")


async def test_other_plans_get_403_naming_quasar_and_their_orders_go_to_the_default_set(api):
    quasar = await api.customer(plan="quasar")
    made = (await api.client.post("/api/sets", json={"name": "Mine"}, headers=auth(quasar.api_key))).json()
    for plan in ("nebula", "stardust", None):
        c = await api.customer(plan=plan, credits=20)
        h = auth(c.api_key)
        before = await counts(api, c.customer_id)
        for r in (await api.client.get("/api/sets", headers=h),
                  await api.client.post("/api/sets", json={"name": "x"}, headers=h),
                  await api.client.get(f"/api/sets/{made['id']}", headers=h),
                  await api.client.patch(f"/api/sets/{made['id']}", json={"paused": True}, headers=h),
                  await api.client.delete(f"/api/sets/{made['id']}", headers=h),
                  await api.client.post("/api/orders", json={**ORDER, "priority": 1, "set_id": made["id"]},
                                        headers=h)):
            err = refused(r, 403, "sets_not_in_plan")
            assert "Quasar" in err["message"]
        assert await counts(api, c.customer_id) == before
    async with api.sessionmaker() as s:
        row = await s.get(CustomerSet, made["id"])
        assert (row.paused, row.deleted_at) == (False, None)


async def test_unknown_and_foreign_set_ids_are_404_and_nothing_is_created_or_held(api):
    owner, other = await api.customer(plan="quasar"), await api.customer(plan="quasar", credits=20)
    theirs = (await api.client.post("/api/sets", json={"name": "Private"}, headers=auth(owner.api_key))).json()
    mine = (await api.client.post("/api/sets", json={"name": "Gone"}, headers=auth(other.api_key))).json()
    assert (await api.client.delete(f"/api/sets/{mine['id']}", headers=auth(other.api_key))).status_code == 204
    before = await counts(api, other.customer_id)
    h = auth(other.api_key)
    messages = {}
    for label, set_id in (("unknown", 2_000_000_000), ("foreign", theirs["id"]), ("deleted", mine["id"])):
        err = refused(await api.client.post("/api/orders", json={**ORDER, "set_id": set_id}, headers=h),
                      404, "set_not_found", "set_id")
        messages[label] = err["message"].replace(str(set_id), "N")
        for r in (await api.client.get(f"/api/sets/{set_id}", headers=h),
                  await api.client.patch(f"/api/sets/{set_id}", json={"name": "mine now"}, headers=h),
                  await api.client.delete(f"/api/sets/{set_id}", headers=h)):
            refused(r, 404, "set_not_found")
    assert len(set(messages.values())) == 1  # another customer's Set answers as if it did not exist
    assert "Private" not in str(messages) and theirs["guid"] not in str(messages)
    assert await counts(api, other.customer_id) == before
    refused(await api.client.post("/api/orders", json={**ORDER, "set_id": 0}, headers=h), 422,
            "validation_error", "set_id")
    async with api.sessionmaker() as s:
        row = await s.get(CustomerSet, theirs["id"])
        assert (row.name, row.deleted_at) == ("Private", None)


async def test_a_set_with_an_open_order_cannot_be_deleted_until_it_ends(api):
    q = await api.customer(plan="quasar", credits=50)
    h = auth(q.api_key)
    made = (await api.client.post("/api/sets", json={"name": "Busy"}, headers=h)).json()
    r = await api.client.post("/api/orders", json={**ORDER, "set_id": made["id"]}, headers=h)
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["set_id"] == made["id"]
    async with api.sessionmaker() as s:
        assert (await s.get(Order, order["id"])).set_guid == made["guid"]
    plain = (await api.client.post("/api/orders", json=ORDER, headers=h)).json()
    assert plain["set_id"] is None  # the default Set
    listed = {o["id"]: o["set_id"] for o in (await api.client.get("/api/orders", headers=h)).json()["items"]}
    assert listed == {order["id"]: made["id"], plain["id"]: None}

    before = await counts(api, q.customer_id)
    err = refused(await api.client.delete(f"/api/sets/{made['id']}", headers=h), 409, "set_not_empty", "set_id")
    assert "1 order" in err["message"]
    assert (await api.client.get(f"/api/sets/{made['id']}", headers=h)).json()["open_orders"] == 1
    sets = (await api.client.get("/api/sets", headers=h)).json()["items"]
    default = next(s for s in sets if s["is_default"])
    assert default["open_orders"] == 1
    refused(await api.client.delete(f"/api/sets/{default['id']}", headers=h), 409, "set_is_default")
    assert await counts(api, q.customer_id) == before

    await api.set_order(order["id"], status="completed")
    assert (await api.client.delete(f"/api/sets/{made['id']}", headers=h)).status_code == 204
    refused(await api.client.get(f"/api/sets/{made['id']}", headers=h), 404, "set_not_found")
    # The ended order keeps its Set; the name is free again.
    assert (await api.client.get(f"/api/orders/{order['id']}", headers=h)).json()["set_id"] == made["id"]
    assert (await api.client.post("/api/sets", json={"name": "Busy"}, headers=h)).status_code == 201
