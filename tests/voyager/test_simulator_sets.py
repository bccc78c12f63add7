"""RoboTarget Sets in the simulator (docs/voyager-protocol.md §7, §9): a disabled Set's targets
are not imaged (a running session stops after its frame), UpdateSet renames, RemoveSet removes the
Set with its targets; the typed client (``voyager.robotarget``) drives the same commands."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.voyager.raw_client import SIM_START
from tests.voyager.test_client_robotarget import m42, rt  # noqa: F401  (fixture)
from tests.voyager.test_simulator_night import PROFILE, add_target_with_shots, history, night_end
from voyager import wire
from voyager.errors import VoyagerActionFailed
from voyager.types import SetSpec


async def _set(c, status: int = 0) -> str:
    guid = str(uuid.uuid4())
    await c.robotarget(wire.M_ADD_SET, {"Guid": guid, "Name": "paused", "ProfileName": PROFILE, "IsDefault": False,
                                        "Status": status, "Tag": "user_7", "Note": ""})
    return guid


async def _enable(c, guid: str, enable: bool) -> None:
    await c.robotarget(wire.M_ENABLE_DISABLE, {"RefGuidObject": guid, "ObjectType": wire.OBJECT_SET,
                                               "OperationType": wire.OPERATION_ENABLE if enable else wire.OPERATION_DISABLE})


async def test_a_disabled_set_is_skipped_until_enabled_while_other_sets_are_imaged(night_sim, raw_client):
    sim = await night_sim()
    c = await raw_client(sim)
    await c.login()
    paused = await _set(c, status=1)
    waiting, _ = await add_target_with_shots(c, [(0, 3, 300)], set_guid=paused, Priority=4)
    other, _ = await add_target_with_shots(c, [(0, 3, 300)], name="M1", ra=5.575, dec=22.01, Priority=0)
    await sim.run_until(night_end())
    assert {s["refguidtarget"] for _, s, _ in await history(c)} == {other}

    await _enable(c, paused, True)
    await sim.run_until(night_end(2))
    imaged = [(s["refguidtarget"], len(done)) for _, s, done in await history(c)]
    assert (waiting, 3) in imaged


async def test_pausing_a_set_stops_its_running_session_after_the_frame(night_sim, raw_client):
    sim = await night_sim()
    c = await raw_client(sim)
    await c.login()
    set_guid = await _set(c)
    target, _ = await add_target_with_shots(c, [(0, 30, 600)], set_guid=set_guid)
    await sim.run_until(SIM_START + timedelta(hours=9))  # 21:00 UTC, mid-session
    await _enable(c, set_guid, False)
    await sim.run_until(night_end())
    [(_, session, done)] = await history(c)
    assert session["refguidtarget"] == target and session["result"] == wire.SESSION_ABORTED
    assert session["sessionexittext"] == "Aborted: set disabled" and 0 < len(done) < 30


async def test_update_and_remove_set_through_the_client(rt, voyager_sim):
    store = voyager_sim.store
    spec = SetSpec(guid=str(uuid.uuid4()), name="Galaxies", profile_name=voyager_sim.config.profile_name, tag="user_9")
    assert await rt.ensure_set(spec) is True
    await rt.update_set(spec.guid, name="Nebulae")
    assert store.sets[spec.guid][wire.ADD_SET_PARAMS["name"]] == "Nebulae"
    assert store.sets[spec.guid][wire.ADD_SET_PARAMS["tag"]] == "user_9"  # unchanged: not sent
    await rt.enable_disable(spec.guid, wire.OBJECT_SET, enable=False)
    assert store.sets[spec.guid][wire.ADD_SET_PARAMS["status"]] == 1

    target = m42(spec.guid)
    await rt.add_target(target)
    assert await rt.remove_set(spec.guid) is True
    assert spec.guid not in store.sets and target.guid not in store.targets
    assert await rt.remove_set(spec.guid) is False  # a retried removal finds nothing: not an error
    with pytest.raises(VoyagerActionFailed) as info:
        await rt.update_set(spec.guid, name="x")
    assert info.value.param_ret[wire.RET] == wire.RET_NOT_FOUND
