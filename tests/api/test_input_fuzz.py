"""Property: control characters, huge numbers and far dates in any text, number or date field of
any write endpoint are refused with a 4xx and the one error body — never a 5xx, never a write.

One app, one database connection pool and one event loop for every example, no deadline, derandomized so CI is reproducible (``STELLAR_FUZZ_RANDOM=1`` explores new examples;
``STELLAR_INPUT_FUZZ_EXAMPLES`` sets the count, default 1,000).
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import httpx

from api.app import create_app
from api.services.customers import create_customer
from models.db import Order
from tests.api.conftest import api_settings, auth, temporal_address

EXAMPLES = int(os.environ.get("STELLAR_INPUT_FUZZ_EXAMPLES", "1000"))
RANDOM = os.environ.get("STELLAR_FUZZ_RANDOM") == "1"
SOON = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
LATER = (datetime.now(timezone.utc) + timedelta(days=20)).isoformat()

#: Every write endpoint with a body, and a valid body to mutate one field of. ``{order}``,
#: ``{customer}``, ``{pack}`` are path fields too. Rotation, cancel and the webhook take no fields.
ENDPOINTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "order": ("customer", "/api/orders", {
        "target_name": "M42", "ra_j2000": 5.588, "dec_j2000": -5.39, "pa": 10.0, "priority": 1,
        "c_moon_down": False, "c_hfd_mean_limit": 0, "c_alt_min": 30.0, "c_ha_start": -3.0, "c_ha_end": 3.0,
        "date_start": SOON, "date_end": LATER, "repeat": 1,
        "shots": [{"filter": "L", "exposure": 60, "quantity": 2, "bin": 1, "gain": 100, "offset": 10}]}),
    "abort": ("customer", "/api/orders/{order}/abort", {"reason": "clouds"}),
    "support_abort": ("support", "/api/support/orders/{order}/abort", {"reason": "dome fault"}),
    "adjust": ("support", "/api/support/customers/{customer}/credits",
               {"amount": 5, "reason": "goodwill", "bucket": "pack"}),
    "create_customer": ("admin", "/api/admin/customers",
                        {"email": "new@example.com", "name": "Ada", "plan": "nebula", "role": "customer"}),
    "estimate": ("customer", "/api/pricing/estimate", {"subscription_plan": "nebula", "target": {
        "priority": 1, "c_moon_down": False, "c_hfd_mean_limit": 0, "repeat": 1,
        "shots": [{"filter": "L", "exposure": 60, "quantity": 2}]}}),
    "subscribe": ("customer", "/api/subscriptions/subscribe", {"plan": "nebula", "payment_method_id": "pm_card_visa"}),
    "change": ("customer", "/api/subscriptions/change", {"plan": "quasar"}),
    "purchase": ("customer", "/api/credit-packs/{pack}/purchase", {"payment_method_id": "pm_card_visa"}),
}
DATE_FIELDS = {"date_start", "date_end"}

CONTROL = st.sampled_from(["\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f", "\ud800", "\udfff"])
#: The control character sits inside the text: leading/trailing whitespace (\x0b, \x0c…) is stripped
#: by design before validation, so at the edges it would be a legitimate value.
NASTY_TEXT = st.builds(lambda a, c, b: f"x{a}{c}{b}x", st.text(max_size=30), CONTROL, st.text(max_size=30))
HUGE_INT = st.one_of(st.integers(min_value=10**10, max_value=10**40), st.integers(min_value=-(10**40), max_value=-(10**10)),
                     st.sampled_from([2**31, 2**63, 2**64, -(2**63) - 1, 10**100]))
HUGE_FLOAT = st.one_of(st.floats(min_value=1e10, max_value=1e308), st.floats(min_value=-1e308, max_value=-1e10),
                       st.sampled_from([1.7976931348623157e308, -1.7976931348623157e308, 1e300]))
FAR_DATE = st.one_of(
    st.datetimes(min_value=datetime(9000, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59),
                 timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))])
                 ).map(datetime.isoformat),
    st.sampled_from(["9999-12-31T23:59:59Z", "9999-12-31T23:59:59.999999-23:59", "+10000-01-01T00:00:00Z",
                     "0000-01-01T00:00:00Z", "2026-13-45T99:99:99Z", "99999999999", "-1"]),
)


def _leaves(value: Any, path: tuple = ()) -> list[tuple]:
    """Paths to every text, number and date leaf of a JSON body (booleans are not numbers here)."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, path + (k,))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, path + (i,))]
    return [path] if isinstance(value, (str, int, float)) and not isinstance(value, bool) else []


def _set(body: Any, path: tuple, value: Any) -> Any:
    body = json.loads(json.dumps(body))
    target = body
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return body


def _value_for(path: tuple, current: Any) -> st.SearchStrategy:
    if path and path[-1] in DATE_FIELDS:
        return st.one_of(FAR_DATE, NASTY_TEXT)
    if isinstance(current, str):
        return NASTY_TEXT
    return st.one_of(HUGE_INT, HUGE_FLOAT, NASTY_TEXT)


@st.composite
def mutations(draw) -> tuple[str, str, tuple, Any]:
    """(endpoint name, field kind: "body" | "path", field path, nasty value)."""
    name = draw(st.sampled_from(sorted(ENDPOINTS)))
    _, path, body = ENDPOINTS[name]
    fields = [("body", p) for p in _leaves(body)] + [("path", (seg[1:-1],)) for seg in path.split("/")
                                                      if seg.startswith("{")]
    kind, field = draw(st.sampled_from(fields))
    if kind == "path":
        value = draw(st.one_of(HUGE_INT, NASTY_TEXT, st.sampled_from(["0", "-1", "1e309", "NaN"])))
    else:
        current = body
        for part in field:
            current = current[part]
        value = draw(_value_for(field, current))
    return name, kind, field, value


def test_nasty_values_in_every_write_field_are_4xx_never_5xx(database_url, temporal_env, tmp_path):
    cfg = api_settings(database_url, temporal_address(temporal_env), f"tq-input-fuzz-{uuid.uuid4()}", tmp_path,
                       api={"rate_limit_per_minute": 10**9, "ip_rate_limit_per_minute": 10**9})
    # A loop of this test's own: hypothesis runs examples synchronously, each one awaited here.
    loop = asyncio.new_event_loop()
    run = loop.run_until_complete
    app = create_app(cfg)
    lifespan = app.router.lifespan_context(app)
    run(lifespan.__aenter__())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://stellar.test")
    statuses: dict[int, int] = {}
    try:
        res = app.state.resources
        keys, defaults, customer_id = run(_setup(res))

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not RANDOM,
                  suppress_health_check=list(HealthCheck))
        @given(case=mutations())
        def send(case):
            name, kind, field, value = case
            role, path, body = ENDPOINTS[name]
            params = dict(defaults)
            if kind == "path":
                params[field[0]] = str(value)
            else:
                body = _set(body, field, value)
            url = path.format(**{k: _quote(v) for k, v in params.items()})
            headers = {**auth(keys[role]), "Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"}
            r = run(client.post(url, content=json.dumps(body), headers=headers))
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            assert 400 <= r.status_code < 500, (name, kind, field, value, r.status_code, r.text[:300])
            assert set(r.json()["error"]) == {"code", "message", "fields"}, r.text

        send()
        print("input fuzz statuses:", dict(sorted(statuses.items())))
        assert sum(statuses.values()) >= EXAMPLES
        balances = run(res.ledger.balances(customer_id))
        assert (balances.available, balances.held) == (0, 0)
    finally:
        run(client.aclose())
        run(lifespan.__aexit__(None, None, None))
        loop.close()


async def _setup(res) -> tuple[dict[str, str], dict[str, str], int]:
    """Keys by role, default path values, and the customer (no credits: a valid order would be a
    402, never a workflow)."""
    tag = uuid.uuid4().hex[:10]
    made = {role: await create_customer(res.sessionmaker, email=f"fuzz-{role}-{tag}@example.com", role=role)
            for role in ("customer", "support", "admin")}
    async with res.sessionmaker() as s:
        order = Order(customer_id=made["customer"].customer_id, target_name="M42", ra_j2000=5.588, dec_j2000=-5.39,
                      status="running", cost=1, shots_total=1)
        s.add(order)
        await s.commit()
        await s.refresh(order)
    keys = {role: c.api_key for role, c in made.items()}
    defaults = {"order": str(order.id), "customer": str(made["customer"].customer_id), "pack": "pack_10"}
    return keys, defaults, made["customer"].customer_id


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value.encode("utf-8", "surrogatepass"), safe="")
