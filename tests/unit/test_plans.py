"""Plans as data and the gate: reasons per field, forced values, the RoboTarget mapping
(docs/pricing.md §1 and §4: the plans and their RoboTarget mapping)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from api.schemas.plans import PlanCatalogueOut
from billing.errors import PlanViolation, UnknownPlan
from billing.plans import PLANS, gate, get_plan, plan_moon_down, pricing_input
from billing.pricing import price
from models.billing import OrderConstraints as Req
from models.billing import PricedShot, VoyagerTargetConstraints


def reasons(plan, **fields) -> dict[str, str]:
    with pytest.raises(PlanViolation) as exc:
        gate(plan, Req(**fields))
    return exc.value.fields


def test_catalogue_matches_the_seed_api_and_get_features():
    body = PlanCatalogueOut.of(PLANS.values()).model_dump(mode="json")
    assert [(p["id"], p["name"], p["price"], p["credits"]) for p in body["plans"]] == [
        ("stardust", "Stardust", 2900, 20), ("nebula", "Nebula", 5900, 60), ("quasar", "Quasar", 11900, 150)]
    assert body["plans"][0]["features"] == {"priority_max": 1, "moon_down": False, "hfd_guarantee": False,
                                            "repeat": False, "sets": False, "mosaics": False, "dashboard": False}
    assert body["plans"][1]["features"] == {"priority_max": 2, "moon_down": True, "hfd_guarantee": "standard",
                                            "repeat": True, "sets": False, "mosaics": False, "dashboard": True}
    assert body["plans"][2]["features"] == {"priority_max": 4, "moon_down": True, "hfd_guarantee": "custom",
                                            "repeat": True, "sets": True, "mosaics": True, "dashboard": True}


def test_plan_lookup_and_the_no_plan_rules():
    assert get_plan("Nebula") is PLANS["nebula"]
    assert get_plan(None) is PLANS["stardust"]  # pack credits without a subscription
    with pytest.raises(UnknownPlan):
        get_plan("galaxy")


# --- Voyager mapping per plan (docs/pricing.md §4) --------------------------------------------


def test_stardust_maps_to_low_priority_moon_allowed_no_hfd_one_shot_altitude_mask():
    c = gate("stardust", Req(priority=1))
    assert c.to_wire() == {"Priority": 1, "C_MoonDown": False, "C_HFDMeanLimit": 0.0, "IsRepeat": False,
                           "Repeat": 1, "C_Mask": "B", "C_AltMin": 30.0, "C_DateStart": 0, "C_DateEnd": 0}


def test_nebula_with_dark_sky_maps_to_bk_mask_and_the_standard_hfd():
    c = gate("nebula", Req(priority=2, c_moon_down=True, repeat=3))
    w = c.to_wire()
    assert (w["Priority"], w["C_MoonDown"], w["C_HFDMeanLimit"], w["IsRepeat"], w["Repeat"], w["C_Mask"]) == (
        2, True, 4.0, True, 3, "BK")
    assert gate("nebula", Req(priority=2)).to_wire()["C_Mask"] == "B"


def test_multi_night_plans_send_is_repeat_even_for_one_run():
    """docs/pricing.md §4: Nebula and Quasar send "IsRepeat": true (multi-night), Stardust false (one-shot)."""
    assert gate("nebula", Req(priority=2)).to_wire()["IsRepeat"] is True
    assert gate("quasar", Req(priority=4)).to_wire()["IsRepeat"] is True
    assert gate("stardust", Req(priority=0)).to_wire()["IsRepeat"] is False


def test_quasar_maps_priority_first_moon_always_custom_hfd_and_windows():
    start = datetime(2026, 1, 10, 20, 0, tzinfo=timezone.utc)
    c = gate("quasar", Req(priority=4, c_moon_down=False, c_hfd_mean_limit=2.5, c_alt_min=40, c_ha_start=-2.5,
                           c_ha_end=3, date_start=start, date_end=start + timedelta(days=30)))
    assert c.to_wire() == {
        "Priority": 4, "C_MoonDown": True, "C_HFDMeanLimit": 2.5, "IsRepeat": True, "Repeat": 1,
        "C_Mask": "BDEK", "C_AltMin": 40.0, "C_HAStart": -2.5, "C_HAEnd": 3.0,
        "C_DateStart": int(start.timestamp()), "C_DateEnd": int(start.timestamp()) + 30 * 86400,
    }
    assert c.plan == "quasar" and "plan" not in c.to_wire()
    assert gate("quasar", Req(priority=3, c_ha_end=1)).c_mask == "BEK"


def test_quasar_without_a_custom_limit_gets_the_free_standard_hfd():
    assert gate("quasar", Req(priority=3)).hfd_mean_limit == 4.0


def test_gated_constraints_round_trip_by_wire_name():
    c = gate("nebula", Req(priority=2, c_moon_down=True))
    assert VoyagerTargetConstraints.model_validate(c.model_dump()) == c
    assert VoyagerTargetConstraints.model_validate_json(c.model_dump_json(by_alias=True)).to_wire() == c.to_wire()


# --- reasons ---------------------------------------------------------------------------------


@pytest.mark.parametrize("plan, priority, reason", [
    ("stardust", 2, "priority 2 needs Nebula"),
    ("stardust", 4, "priority 4 needs Quasar"),
    ("nebula", 3, "priority 3 needs Quasar"),
    (None, 2, "priority 2 needs Nebula"),
])
def test_priority_above_the_plan_names_the_plan_that_allows_it(plan, priority, reason):
    assert reasons(plan, priority=priority) == {"priority": reason}


def test_stardust_refuses_every_premium_option_at_once():
    assert reasons("stardust", priority=3, c_moon_down=True, c_hfd_mean_limit=2.0, repeat=2, c_ha_start=-1) == {
        "priority": "priority 3 needs Quasar",
        "c_moon_down": "moon-down needs Nebula",
        "c_hfd_mean_limit": "an HFD guarantee needs Nebula",
        "repeat": "repeat needs Nebula",
        "c_ha_start": "an hour-angle window needs Quasar",
    }


def test_nebula_refuses_a_custom_hfd_limit_and_hour_angles():
    assert reasons("nebula", c_hfd_mean_limit=2.5, c_ha_end=2) == {
        "c_hfd_mean_limit": "a custom HFD limit needs Quasar",
        "c_ha_end": "an hour-angle window needs Quasar",
    }
    assert gate("nebula", Req(c_hfd_mean_limit=4.0)).hfd_mean_limit == 4.0  # asking for the standard is fine


@pytest.mark.parametrize("fields, field, text", [
    ({"priority": 5}, "priority", "between 0 and 4"),
    ({"priority": -1}, "priority", "between 0 and 4"),
    ({"c_hfd_mean_limit": 1.2}, "c_hfd_mean_limit", "between 1.5 and 4.0"),
    ({"c_hfd_mean_limit": 4.5}, "c_hfd_mean_limit", "between 1.5 and 4.0"),
    ({"c_hfd_mean_limit": -1}, "c_hfd_mean_limit", "must be 0"),
    ({"repeat": 0}, "repeat", "at least 1"),
    ({"c_alt_min": 95}, "c_alt_min", "between 0 and 90"),
    ({"c_ha_start": -13}, "c_ha_start", "between -12 and 12"),
    ({"c_ha_start": 2, "c_ha_end": 1}, "c_ha_end", "after start"),
    ({"date_start": datetime(2026, 2, 1, tzinfo=timezone.utc), "date_end": datetime(2026, 1, 1, tzinfo=timezone.utc)},
     "date_end", "after its start"),
])
def test_ranges_are_checked_with_clear_messages(fields, field, text):
    got = reasons("quasar", **fields)
    assert list(got) == [field] and text in got[field]


def test_stardust_forces_moon_down_off_and_never_sends_a_limit():
    c = gate("stardust", Req(priority=0, c_moon_down=False, c_hfd_mean_limit=0))
    assert (c.moon_down, c.hfd_mean_limit, c.is_repeat) == (False, 0.0, False)


# --- pricing input from the gated order ------------------------------------------------------

SHOTS = [PricedShot(filter="Ha", exposure=300, quantity=20), PricedShot(filter="OIII", exposure=300, quantity=20)]


def test_pricing_input_does_not_charge_the_standard_hfd():
    p = pricing_input(gate("nebula", Req(priority=2, c_moon_down=True)), SHOTS)
    assert (p.priority, p.c_moon_down, p.c_hfd_mean_limit, p.repeat) == (2, True, 0.0, 1)
    assert price(p) == 9  # docs/pricing.md §3 example 2


def test_pricing_input_charges_quasar_custom_hfd_and_moon_down():
    shots = [PricedShot(filter=f, exposure=600, quantity=40) for f in ("Ha", "OIII", "SII")]
    p = pricing_input(gate("quasar", Req(priority=4, c_hfd_mean_limit=2.0)), shots)
    assert (p.c_moon_down, p.c_hfd_mean_limit) == (True, 2.0)
    assert price(p) == 189  # docs/pricing.md §3 example 3
    standard = pricing_input(gate("quasar", Req(priority=4, c_hfd_mean_limit=4.0)), shots)
    assert standard.c_hfd_mean_limit == 0 and price(standard) == 126


@pytest.mark.parametrize("plan", [None, *PLANS])
@pytest.mark.parametrize("asked", [False, True])
def test_plan_moon_down_is_what_the_gate_sends_and_what_a_refused_order_runs_with_once_fixed(plan, asked):
    try:
        assert gate(plan, Req(c_moon_down=asked)).moon_down is plan_moon_down(plan, asked)
    except PlanViolation as exc:  # a plan without moon-down: refused, and placed without it
        assert set(exc.fields) == {"c_moon_down"} and asked
        assert plan_moon_down(plan, asked) is gate(plan, Req(c_moon_down=False)).moon_down is False
