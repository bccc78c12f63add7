"""A Quasar 2×2 mosaic of IC1396 end to end: the HTTP API, a real worker and observatory monitor,
the Voyager simulator on a socket (accelerated clock), the Temporal dev server, PostgreSQL and the
ledger. The seed's example (docs/pricing.md §3, example 3) as a mosaic: priced 189, four panels
imaged as four RoboTarget Targets, one hold captured once, a report per panel."""

from __future__ import annotations

from datetime import UTC, datetime

import astropy.units as u
import pytest
from astropy.coordinates import SkyCoord

from core.optics import Optics
from tests.api.conftest import auth
from tests.api.test_order_e2e import wait_status
from tests.workflows.support import ledger_entries
from tests.mosaic.test_mosaic_api import SEED
from voyager import wire

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

#: Close to a new moon, when IC1396 (Dec +57.5°) is high all night at the simulated site.
NEW_MOON_EVENING = datetime(2026, 9, 11, 17, 0, tzinfo=UTC)
NAMES = ["IC1396 P1-1", "IC1396 P2-1", "IC1396 P1-2", "IC1396 P2-2"]


def _sky(p: dict) -> SkyCoord:
    return SkyCoord(ra=p["ra_j2000"] * 15 * u.deg, dec=p["dec_j2000"] * u.deg)


async def test_quasar_mosaic_of_ic1396_images_four_panels_priced_and_settled_once(stack_factory):
    # Seeing of 1″ keeps most frames under the custom 2.0 px HFD limit (rejected frames are retaken).
    async with stack_factory(start_time=NEW_MOON_EVENING, speed=3000.0, seeing_arcsec=1.0, seed=14) as st:
        h = st.h
        c = await h.customer(plan="quasar", credits=189)
        r = await h.client.post("/api/orders", json=SEED, headers={**auth(c.api_key), "Idempotency-Key": "mosaic-e2e"})
        assert r.status_code == 201, r.text
        order = r.json()
        assert order["cost"] == 189  # the seed's example, exactly: the shot list is the whole mosaic's

        # Panel centres: adjacent panels one field of view less the overlap apart, on the sky.
        fov = Optics.from_settings(h.settings.optics).field_of_view
        panels = order["progress"]["per_panel"]
        assert [p["name"] for p in panels] == NAMES
        at = {(p["column"], p["row"]): _sky(p) for p in panels}
        for a, b in (((1, 1), (2, 1)), ((1, 2), (2, 2))):
            assert at[a].separation(at[b]).deg == pytest.approx(fov.width_deg * 0.9, rel=2e-3)
        for a, b in (((1, 1), (1, 2)), ((2, 1), (2, 2))):
            assert at[a].separation(at[b]).deg == pytest.approx(fov.height_deg * 0.9, rel=2e-3)
        centre = SkyCoord(ra=order["ra_j2000"] * 15 * u.deg, dec=order["dec_j2000"] * u.deg)
        assert all(s.separation(centre).deg < fov.width_deg for s in at.values())

        final = await wait_status(h, c.api_key, order["id"], {"completed", "partial", "failed", "expired"}, 540)
        assert final["status"] == "completed", final["status_reason"]
        # One hold, captured once, whole.
        assert final["credits"] == {"cost": 189, "held": 189, "captured": 189, "released": 0}
        balances = await h.ledger.balances(c.customer_id)
        assert (balances.available, balances.held) == (0, 0)
        assert sorted(e.kind for e in await ledger_entries(h.engine, order["id"])) == ["capture", "hold"]

        # Voyager got one Target per panel, in the customer's Set, at the panel's centre.
        targets = {t[wire.TARGET_FIELDS["name"]]: t for t in st.sim.store.targets.values()
                   if str(t[wire.TARGET_FIELDS["name"]]).startswith("IC1396 P")}
        assert sorted(targets) == sorted(NAMES)
        assert len({t[wire.TARGET_FIELDS["set_guid"]] for t in targets.values()}) == 1
        for x in panels:
            t = targets[x["name"]]
            assert (t[wire.TARGET_FIELDS["ra_j2000"]], t[wire.TARGET_FIELDS["dec_j2000"]]) == pytest.approx(
                (x["ra_j2000"], x["dec_j2000"]), abs=1e-6)
            assert t[wire.TARGET_FIELDS["status"]] == 1  # disabled once the mosaic settled

        # Progress and the report: per panel (30 frames each, 10 per filter) and for the whole mosaic.
        p = final["progress"]
        assert (p["shots_done"], p["shots_total"]) == (120, 120)
        assert [(x["name"], x["done"] >= 30, x["total"], x["accepted"] >= 30) for x in p["per_panel"]] == [
            (n, True, 30, True) for n in NAMES]
        assert {f["filter"]: f["total"] for f in p["per_filter"]} == {"Ha": 40, "OIII": 40, "SII": 40}
        report = final["report"]
        assert {f["filter"]: f["frames"] >= 40 for f in report["filters"]} == {"Ha": True, "OIII": True, "SII": True}
        assert [x["name"] for x in report["panels"]] == NAMES
        for x in report["panels"]:
            assert {f["filter"] for f in x["filters"]} == {"Ha", "OIII", "SII"}
            assert all(f["frames"] >= 10 for f in x["filters"]) and x["frames_accepted"] >= 30

        # The gallery per panel: each frame names its panel.
        second = (await h.client.get(f"/api/orders/{order['id']}/images", params={"panel": 1, "limit": 200},
                                     headers=auth(c.api_key))).json()
        assert second["total"] >= 30 and {i["panel"] for i in second["items"]} == {"IC1396 P2-1"}
        everything = (await h.client.get(f"/api/orders/{order['id']}/images", params={"limit": 200},
                                         headers=auth(c.api_key))).json()
        assert {i["panel"] for i in everything["items"]} == set(NAMES)


async def test_aborting_a_mosaic_stops_every_panel_and_settles_once(stack_factory):
    async with stack_factory(start_time=NEW_MOON_EVENING, speed=600.0, seeing_arcsec=1.0, seed=15) as st:
        h = st.h
        c = await h.customer(plan="quasar", credits=189)
        r = await h.client.post("/api/orders", json=SEED, headers=auth(c.api_key))
        assert r.status_code == 201, r.text
        order = r.json()
        await wait_status(h, c.api_key, order["id"], {"running"}, 240)
        r = await h.client.post(f"/api/orders/{order['id']}/abort", json={"reason": "clouds forecast"},
                                headers=auth(c.api_key))
        assert r.status_code == 202, r.text
        final = await wait_status(h, c.api_key, order["id"], {"aborted", "completed", "failed"}, 240)
        assert final["status"] == "aborted", final["status_reason"]

        # Every panel's Target is disabled, not only the one that was observing.
        targets = [t for t in st.sim.store.targets.values() if str(t[wire.TARGET_FIELDS["name"]]).startswith("IC1396 P")]
        assert len(targets) == 4 and all(t[wire.TARGET_FIELDS["status"]] == 1 for t in targets)
        # One hold, resolved once: what was taken is captured, the rest released.
        credits = final["credits"]
        assert credits["held"] == 189 and credits["captured"] + credits["released"] == 189
        assert credits["captured"] < 189
        kinds = sorted(e.kind for e in await ledger_entries(h.engine, order["id"]))
        assert kinds in (["capture", "hold", "release"], ["hold", "release"])
        balances = await h.ledger.balances(c.customer_id)
        assert (balances.available, balances.held) == (credits["released"], 0)
        assert [x["name"] for x in final["report"]["panels"]] == NAMES
