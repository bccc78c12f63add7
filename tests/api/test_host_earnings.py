"""Telescope hosts earn what their telescopes deliver (docs/host-earnings.md), on a database of its own.

Two hosts, three telescopes; customers on each plan (invoices through the real Stripe-fact path)
and on packs, with support credits; 20 orders with partial deliveries captured through
``Ledger.capture`` (the call ``ledger.settle`` makes); the third telescope's share changes after
order 15; a pack is 20 % refunded after its credits were captured. Every host figure is compared
with the hand computation below, to the cent.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import uuid
from collections import defaultdict
from datetime import datetime, timezone
from fractions import Fraction
from math import floor

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from billing.host_check import check_host_earnings
from billing.ledger_check import check_invariants
from billing.stripe_effects import apply_fact
from core.settings import get_settings
from models.db import OrderEvent, Payment
from models.payments import InvoiceLine, StripeFact
from stellar_cli.host import app as host_cli
from stellar_cli.ledger import app as ledger_cli
from tests.api.conftest import auth
from tests.api.telescope_network import CHILE, NEW_MEXICO, SPAIN, network_api
from web.accounts import set_password

# What each grant cost (cents) for its credits: docs/pricing.md §1 plans, billing/packs.json packs.
GRANTS = {"inA": (2900, 20), "packA": (1500, 10), "inB": (5900, 60), "inC": (11900, 150), "packD": (6750, 55),
          "supD": (0, 5), "packE1": (1500, 10), "supE": (0, 4), "packE2": (1500, 10)}

# (order, customer, telescope, held, captured, the captured credits' grants oldest first, share %, host cents)
# worked by hand: e.g. order 6 = floor(50 % × 13 × 5900/60) = floor(639.17) = 639.
ORDERS = [
    (1, "A", "t1", 8, 8, [("inA", 8)], 30, 348),
    (2, "A", "t2", 10, 6, [("inA", 6)], 50, 435),
    (3, "A", "t3", 9, 9, [("inA", 6), ("packA", 3)], 25, 330),
    (4, "A", "t1", 5, 2, [("packA", 2)], 30, 90),
    (5, "B", "t1", 12, 12, [("inB", 12)], 30, 354),
    (6, "B", "t2", 20, 13, [("inB", 13)], 50, 639),
    (7, "B", "t3", 7, 7, [("inB", 7)], 25, 172),
    (8, "B", "t3", 10, 3, [("inB", 3)], 25, 73),
    (9, "C", "t2", 30, 30, [("inC", 30)], 50, 1190),
    (10, "C", "t1", 25, 11, [("inC", 11)], 30, 261),
    (11, "C", "t3", 16, 16, [("inC", 16)], 25, 317),
    (12, "C", "t2", 9, 4, [("inC", 4)], 50, 158),
    (13, "D", "t1", 20, 20, [("packD", 20)], 30, 736),
    (14, "D", "t2", 25, 17, [("packD", 17)], 50, 1043),
    (15, "D", "t3", 23, 21, [("packD", 18), ("supD", 3)], 25, 552),
    # t3's share goes from 25 % to 40 % here
    (16, "E", "t3", 12, 12, [("packE1", 10), ("supE", 2)], 40, 600),
    (17, "E", "t1", 9, 5, [("supE", 2), ("packE2", 3)], 30, 135),
    (18, "E", "t3", 7, 7, [("packE2", 7)], 40, 420),
    (19, "B", "t3", 6, 5, [("inB", 5)], 40, 196),
    (20, "A", "t2", 5, 5, [("packA", 5)], 50, 375),
]
# 1350 of packD's 6750 cents refunded: its credits are worth 5400/55 each from then on.
AFTER_REFUND = {13: 589, 14: 834, 15: 441}  # floor(30 % × 20 × 5400/55), floor(50 % × 17 × …), floor(25 % × 18 × …)
HOSTS = {"t1": "H1", "t2": "H1", "t3": "H2"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def test_the_hand_computation_is_the_documented_rule():
    for n, _, _, _, captured, parts, share, cents in ORDERS:
        assert sum(c for _, c in parts) == captured
        value = sum(Fraction(c * GRANTS[g][0], GRANTS[g][1]) for g, c in parts)
        assert floor(value * share / 100) == cents, n
    for n, cents in AFTER_REFUND.items():
        parts, share = ORDERS[n - 1][5], ORDERS[n - 1][6]
        value = sum(Fraction(c * (5400 if g == "packD" else GRANTS[g][0]), GRANTS[g][1]) for g, c in parts)
        assert floor(value * share / 100) == cents, n


async def _invoice(engine, cid: int, plan: str, cents: int) -> None:
    out = await apply_fact(engine, StripeFact(kind="invoice_paid", event_id=f"evt_{uuid.uuid4().hex}", customer_id=cid,
                                              invoice_id=f"in_{uuid.uuid4().hex[:16]}", amount_cents=cents,
                                              lines=[InvoiceLine(plan=plan, amount=cents)]))
    assert out.note == "granted", out


async def _pack(api, cid: int, pack: str, credits: int, bonus: int, cents: int) -> str:
    async with api.sessionmaker() as s:
        p = Payment(customer_id=cid, pack_id=pack, credits=credits, bonus_credits=bonus, amount_cents=cents)
        s.add(p)
        await s.commit()
        await s.refresh(p)
    intent = f"pi_{uuid.uuid4().hex[:16]}"
    out = await apply_fact(api.engine, StripeFact(kind="payment_intent_succeeded", event_id=f"evt_{uuid.uuid4().hex}",
                                                  payment_id=p.id, payment_intent_id=intent, amount_cents=cents,
                                                  currency="eur"))
    assert out.note == "granted", out
    return intent


def _csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.timeout(300)
async def test_two_hosts_twenty_orders_every_figure_to_the_cent(engine, database_url, temporal_env, task_queue,
                                                                  tmp_path, monkeypatch):
    async with network_api(engine, database_url, temporal_env, task_queue, tmp_path) as api:
        admin = await api.customer(role="admin")
        h1, h2, stranger = await api.customer(), await api.customer(), await api.customer()
        hosts = {"H1": h1.customer_id, "H2": h2.customer_id}
        owner = {"t1": h1, "t2": h1, "t3": h2}
        body = {"t1": SPAIN, "t2": NEW_MEXICO, "t3": CHILE}
        start_share = {"t1": 30, "t2": 50, "t3": 25}
        # A share outside 0–100 is refused (docs/telescopes.md §1).
        bad = await api.client.post("/api/admin/telescopes", headers=auth(admin.api_key), json=body["t1"] | {
            "slug": "t1", "host_customer_id": h1.customer_id, "host_share_percent": 101})
        assert bad.status_code == 422, bad.text
        tid = {}
        for slug in ("t1", "t2", "t3"):
            r = await api.client.post("/api/admin/telescopes", headers=auth(admin.api_key), json=body[slug] | {
                "slug": slug, "host_customer_id": owner[slug].customer_id, "host_share_percent": start_share[slug]})
            assert r.status_code == 201, r.text
        async with api.engine.connect() as conn:
            tid = dict((await conn.execute(sa.text("SELECT slug, id FROM telescope"))).all())

        cust = {k: (await api.customer()).customer_id for k in "ABCDE"}
        ledger = api.ledger
        await _invoice(api.engine, cust["A"], "stardust", 2900)
        await _pack(api, cust["A"], "10", 10, 0, 1500)
        await _invoice(api.engine, cust["B"], "nebula", 5900)
        await _invoice(api.engine, cust["C"], "quasar", 11900)
        intent_d = await _pack(api, cust["D"], "50", 50, 5, 6750)
        await _pack(api, cust["E"], "10", 10, 0, 1500)
        await ledger.adjust(cust["E"], 4, actor="support:test", reason="goodwill", idempotency_key=f"sup:{uuid.uuid4()}")
        await _pack(api, cust["E"], "10", 10, 0, 1500)

        order_id = {}
        for n, who, slug, held, captured, _, share, _ in ORDERS:
            if n == 15:
                await ledger.adjust(cust["D"], 5, actor="support:test", reason="goodwill",
                                    idempotency_key=f"sup:{uuid.uuid4()}")
            if n == 16:  # the share changes mid-month; orders captured before keep theirs
                r = await api.client.patch("/api/admin/telescopes/t3", headers=auth(admin.api_key),
                                           json={"host_share_percent": 40})
                assert r.status_code == 200, r.text
            order = await api.insert_order(cust[who], status="partial", telescope_id=tid[slug])
            order_id[n] = order.id
            await ledger.hold(cust[who], order.id, held)
            res = await ledger.capture(order.id, captured, reason="partial")
            assert (res.captured, res.released) == (captured, held - captured)
        bad_share = await api.client.patch("/api/admin/telescopes/t3", headers=auth(admin.api_key),
                                           json={"host_share_percent": -1})
        assert bad_share.status_code == 422

        # Figures at capture time, to the cent.
        async with api.engine.connect() as conn:
            earned = dict((await conn.execute(sa.text(
                "SELECT order_id, amount_cents FROM host_earning_entry WHERE kind = 'earning' AND account LIKE 'host:%'")
            )).all())
            shares = dict((await conn.execute(sa.text(
                "SELECT order_id, share_percent FROM host_earning_entry WHERE kind = 'earning' AND account LIKE 'host:%'")
            )).all())
            events = (await conn.execute(sa.select(OrderEvent.__table__.c.order_id, OrderEvent.__table__.c.payload)
                                         .where(OrderEvent.__table__.c.kind == "host_earnings"))).all()
        assert {n: earned[order_id[n]] for n, *_ in ORDERS} == {n: cents for n, *_, cents in ORDERS}
        assert {n: shares[order_id[n]] for n, *_ in ORDERS} == {n: share for n, *_, share, _ in ORDERS}
        assert {e.order_id: (e.payload["type"], e.payload["credits"]) for e in events} == {
            order_id[n]: ("HostEarningsCredited", captured) for n, _, _, _, captured, *_ in ORDERS}
        assert not any("amount_cents" in e.payload or "share_percent" in e.payload for e in events)

        # A 20 % refund of D's pack after its credits were captured: the hosts give back their share of it.
        refund = await apply_fact(api.engine, StripeFact(
            kind="charge_refunded", event_id=f"evt_{uuid.uuid4().hex}", charge_id=f"ch_{uuid.uuid4().hex[:12]}",
            payment_intent_id=intent_d, amount_cents=6750, refunded_cents=1350))
        assert refund.credits == -11  # 55 × 1350 / 6750 credits taken back (2 in the bucket, 9 as debt)
        expected = {n: AFTER_REFUND.get(n, cents) for n, *_, cents in ORDERS}
        per_host = defaultdict(int)
        per_telescope = defaultdict(int)
        for n, _, slug, *_ in ORDERS:
            per_host[HOSTS[slug]] += expected[n]
            per_telescope[slug] += expected[n]
        assert dict(per_telescope) == {"t1": 1777, "t2": 3631, "t3": 2549}

        # The API: per telescope, per month, per order with the grants' values; customers by alias.
        r1 = await api.client.get("/api/host/earnings", headers=auth(h1.api_key))
        assert r1.status_code == 200, r1.text
        e1 = r1.json()
        assert e1["due_cents"] == e1["earned_cents"] == per_host["H1"] == 5408
        month = datetime.now(timezone.utc).strftime("%Y-%m")
        for t in e1["telescopes"]:
            assert t["net_cents"] == per_telescope[t["slug"]]
            assert [(m["month"], m["net_cents"]) for m in t["months"]] == [(month, per_telescope[t["slug"]])]
            for o in t["orders"]:
                n = next(k for k, v in order_id.items() if v == o["order_id"])
                row = ORDERS[n - 1]
                assert (o["telescope"], o["credits"], o["share_percent"], o["earned_cents"], o["net_cents"]) == (
                    row[2], row[4], row[6], row[7], expected[n])
                values = {1: [(20, 2900, 0)], 13: [(55, 6750, 1350)]}.get(n)
                if values:
                    assert [(g["grant_credits"], g["grant_value_cents"], g["grant_reversed_cents"])
                            for g in o["grants"]] == values
                assert sorted(g["credits"] for g in o["grants"]) == sorted(c for _, c in row[5])
        assert sorted(o["order_id"] for t in e1["telescopes"] for o in t["orders"]) == sorted(
            order_id[n] for n, _, slug, *_ in ORDERS if HOSTS[slug] == "H1")
        text = r1.text
        assert all(c.email not in text for c in api.customers) and "@" not in text
        aliases = {(c["customer"], c["telescope"]): c for c in e1["customers"]}
        assert len({a for a, _ in aliases}) == 5  # five customers observed on H1's telescopes, one alias each
        a_on_t1 = [c for (a, t), c in aliases.items() if t == "t1" and c["credits_captured"] == 10]
        assert len(a_on_t1) == 1 and a_on_t1[0]["orders"] == 2  # A: orders 1 and 4 on t1, 8 + 2 credits

        r2 = await api.client.get("/api/host/earnings", headers=auth(h2.api_key))
        assert r2.json()["due_cents"] == per_host["H2"] == 2549

        # The CSV equals the API.
        c1 = await api.client.get("/api/host/earnings/statement.csv", params={"month": month}, headers=auth(h1.api_key))
        assert c1.status_code == 200 and c1.headers["content-type"].startswith("text/csv")
        rows = _csv(c1.text)
        net = defaultdict(int)
        for row in rows:
            net[int(row["order_id"])] += int(row["amount_cents"])
        api_net = {o["order_id"]: o["net_cents"] for t in e1["telescopes"] for o in t["orders"]}
        assert dict(net) == api_net
        assert sum(int(r["amount_cents"]) for r in rows) == e1["due_cents"]

        # Payouts: staff only, Idempotency-Key required, ≤ due, to a host; the same key twice pays once.
        payout = {"host_customer_id": h1.customer_id, "amount_cents": 5000, "method": "external",
                  "reference": "SEPA-2026-0001"}
        assert (await api.client.post("/api/admin/payouts", json=payout, headers=auth(h1.api_key))).status_code == 403
        no_key = await api.client.post("/api/admin/payouts", json=payout, headers=auth(admin.api_key))
        assert no_key.status_code == 422
        key = {"Idempotency-Key": f"payout-{uuid.uuid4()}"}
        first = await api.client.post("/api/admin/payouts", json=payout, headers=auth(admin.api_key) | key)
        again = await api.client.post("/api/admin/payouts", json=payout, headers=auth(admin.api_key) | key)
        assert first.status_code == 201, first.text
        assert again.status_code == 201 and again.json()["id"] == first.json()["id"] and again.json()["replayed"]
        assert first.json()["due_after_cents"] == 408
        over = await api.client.post("/api/admin/payouts", json=payout | {"amount_cents": 409},
                                     headers=auth(admin.api_key) | {"Idempotency-Key": f"payout-{uuid.uuid4()}"})
        assert over.status_code == 422 and over.json()["error"]["code"] == "payout_exceeds_due"
        assert "408" in over.json()["error"]["message"]
        not_host = await api.client.post("/api/admin/payouts", json=payout | {"host_customer_id": stranger.customer_id},
                                         headers=auth(admin.api_key) | {"Idempotency-Key": f"payout-{uuid.uuid4()}"})
        assert not_host.status_code == 422 and not_host.json()["error"]["code"] == "not_a_host"
        connect = await api.client.post("/api/admin/payouts", json=payout | {"amount_cents": 8, "method": "stripe_connect"},
                                        headers=auth(admin.api_key) | {"Idempotency-Key": f"payout-{uuid.uuid4()}"})
        assert connect.status_code == 422 and connect.json()["error"]["code"] == "payout_method_unavailable"
        # The same payout delivered twice at once: one is recorded, both answers name it.
        both = {"Idempotency-Key": f"payout-{uuid.uuid4()}"}
        small = payout | {"amount_cents": 8, "reference": "SEPA-2026-0002"}
        r_a, r_b = await asyncio.gather(*(api.client.post("/api/admin/payouts", json=small,
                                                          headers=auth(admin.api_key) | both) for _ in range(2)))
        assert (r_a.status_code, r_b.status_code) == (201, 201) and r_a.json()["id"] == r_b.json()["id"]
        assert sorted((r_a.json()["replayed"], r_b.json()["replayed"])) == [False, True]
        after = (await api.client.get("/api/host/earnings", headers=auth(h1.api_key))).json()
        assert (after["due_cents"], after["paid_cents"], len(after["payouts"])) == (400, 5008, 2)
        rows = _csv((await api.client.get("/api/host/earnings/statement.csv", params={"month": month},
                                          headers=auth(h1.api_key))).text)
        assert [(r["kind"], int(r["amount_cents"])) for r in rows if r["kind"] == "payout"] == [
            ("payout", -5000), ("payout", -8)]
        assert sum(int(r["amount_cents"]) for r in rows) == 400

        # The web app's page shows the same month, and its CSV is the API's.
        async with api.sessionmaker() as s:
            await set_password(s, h1.customer_id, "a long password")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url="http://stellar.test") as web:
            page = await web.get("/app/sign-in")
            token = CSRF.search(page.text).group(1)
            signed = await web.post("/app/sign-in", data={"csrf_token": token, "email": h1.email,
                                                          "password": "a long password"})
            assert signed.status_code == 303, signed.text
            html = await web.get("/app/host/earnings", params={"month": month})
            assert html.status_code == 200, html.text
            assert 'data-testid="month-total" data-cents="400"' in html.text
            assert all(f">{c['customer']}<" in html.text for c in e1["customers"])
            web_csv = await web.get("/app/host/earnings.csv", params={"month": month})
            api_csv = await api.client.get("/api/host/earnings/statement.csv", params={"month": month},
                                           headers=auth(h1.api_key))
            assert web_csv.text == api_csv.text

        # Who may see what.
        assert (await api.client.get("/api/host/earnings", headers=auth(stranger.api_key))).status_code == 403
        other = await api.client.get("/api/host/earnings", params={"telescope": "t1"}, headers=auth(h2.api_key))
        assert other.status_code == 404 and "t1" not in str(other.json().get("telescopes", ""))
        assert "Sierra" not in other.text
        own = await api.client.get("/api/host/earnings", params={"telescope": "t3"}, headers=auth(h2.api_key))
        assert own.status_code == 200 and [t["slug"] for t in own.json()["telescopes"]] == ["t3"]
        bad_month = await api.client.get("/api/host/earnings/statement.csv", params={"month": "2026-13"},
                                         headers=auth(h1.api_key))
        assert bad_month.status_code == 422

        # The checks: the credit ledger and the host ledger are consistent; the CLI says so.
        async with api.engine.connect() as conn:
            assert await check_invariants(conn) == []
            assert await check_host_earnings(conn) == []
        url = api.settings.database.effective_url()
        monkeypatch.setenv("STELLAR_DATABASE__URL", url)
        get_settings.cache_clear()
        try:
            result = await asyncio.to_thread(CliRunner().invoke, ledger_cli, ["check"])
        finally:
            get_settings.cache_clear()
        assert result.exit_code == 0 and "ledger OK" in result.output, result.output

        # One statement e-mail per host and month through the outbox, exactly once.
        from mail.host_statements import enqueue_host_statements, statement_key

        for expected_queued in (2, 0):
            async with api.engine.begin() as conn:
                hosts_seen, queued = await enqueue_host_statements(conn, api.settings, month)
            assert (hosts_seen, queued) == (2, expected_queued)
        async with api.engine.connect() as conn:
            mails = (await conn.execute(sa.text(
                "SELECT source_key, to_address, body FROM mail_message WHERE source_key LIKE 'host_statement:%'"))).all()
        assert sorted(m.source_key for m in mails) == sorted(statement_key(h, month) for h in hosts.values())
        h1_mail = next(m for m in mails if m.source_key == statement_key(h1.customer_id, month))
        assert h1_mail.to_address == h1.email and "4.00 €" in h1_mail.body  # the balance due after the payouts
        assert not any(api.customers[i].email in h1_mail.body for i in range(len(api.customers)))
        monkeypatch.setenv("STELLAR_DATABASE__URL", api.settings.database.effective_url())
        get_settings.cache_clear()
        try:
            rerun = await asyncio.to_thread(CliRunner().invoke, host_cli, ["statements", "--month", month])
            malformed = await asyncio.to_thread(CliRunner().invoke, host_cli, ["statements", "--month", "2026-13"])
        finally:
            get_settings.cache_clear()
        assert rerun.exit_code == 0 and "0 statement(s) queued" in rerun.output and "2 host(s)" in rerun.output, rerun.output
        assert malformed.exit_code == 1

        # A host credit that breaks the rule makes `stellar ledger check` fail, naming the order.
        async with api.engine.begin() as conn:
            await conn.execute(sa.text(
                "UPDATE host_earning_entry SET amount_cents = amount_cents + CASE WHEN account LIKE 'host:%' THEN 1 "
                "ELSE -1 END WHERE transfer_key = :k"), {"k": f"order:{order_id[5]}:host_earning"})
        get_settings.cache_clear()
        try:
            broken = await asyncio.to_thread(CliRunner().invoke, ledger_cli, ["check"])
        finally:
            get_settings.cache_clear()
        assert broken.exit_code == 1
        assert "host_credit" in broken.output and f"order {order_id[5]}" in broken.output, broken.output
