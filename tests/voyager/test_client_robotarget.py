"""RoboTarget API against the real simulator: CRUD, idempotent ensure_*, public commands, big JPGs."""

from __future__ import annotations

import asyncio
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from core.voyager_clients import connection_from_settings, event_stream_from_settings, pool_from_settings
from tests.voyager.conftest import sim_settings
from voyager import protocol, wire
from voyager.errors import VoyagerActionFailed
from voyager.robotarget import RoboTarget
from voyager.types import SetSpec, ShotSpec, TargetSpec

EVENING = datetime(2025, 1, 25, 15, 0, tzinfo=UTC)
NEXT_MORNING = datetime(2025, 1, 26, 7, 0, tzinfo=UTC)


def _guid() -> str:
    return str(uuid.uuid4())


def m42(set_guid: str, **fields) -> TargetSpec:
    """M42 from OHP in late January: transits ~21:30 UTC at 40° altitude."""
    values = dict(guid=_guid(), set_guid=set_guid, name="M42", ra_j2000=5.588, dec_j2000=-5.39, alt_min=20.0,
                  ha_start=-3.0, ha_end=3.0, date_start=EVENING, date_end=EVENING + timedelta(days=1))
    values.update(fields)
    return TargetSpec(**values)


@pytest.fixture
async def rt(voyager_sim):
    pool = pool_from_settings(sim_settings(voyager_sim), 2)
    await pool.start()
    yield RoboTarget(pool)
    await pool.close()


async def test_public_commands(rt, voyager_sim):
    assert await rt.get_status() == "IDLE"
    filters = await rt.get_filter_configuration()
    assert filters == {name: i for i, name in enumerate(voyager_sim.config.filters)}
    profiles = await rt.get_profiles()
    assert [p.name for p in profiles] == [voyager_sim.config.profile_name] and profiles[0].is_active


async def test_set_target_shot_lifecycle(rt, voyager_sim):
    profile = voyager_sim.config.profile_name
    s = SetSpec(guid=_guid(), name="Order 42", profile_name=profile, tag="customer-7")
    assert await rt.ensure_set(s) is True
    assert await rt.ensure_set(s) is False  # the retried add recognises its own GUID
    with pytest.raises(VoyagerActionFailed) as info:
        await rt.add_set(s)
    assert info.value.param_ret["ret"] == wire.RET_DUPLICATE

    t = m42(s.guid, priority=3)
    assert await rt.ensure_target(t) is True
    assert await rt.ensure_target(t) is False
    [info_t] = await rt.get_targets(s.guid)
    assert (info_t.guid, info_t.name, info_t.set_guid, info_t.priority) == (t.guid, "M42", s.guid, 3)
    assert info_t.ra_j2000 == pytest.approx(5.588) and info_t.dec_j2000 == pytest.approx(-5.39)
    assert [x.guid for x in await rt.get_targets()] == [t.guid]  # "" = every set

    await rt.update_target(t.guid, priority=4, alt_min=25.0)
    assert (await rt.get_target(t.guid)).priority == 4
    assert voyager_sim.store.targets[t.guid]["C_AltMin"] == 25.0

    shots = [
        ShotSpec(guid=_guid(), target_guid=t.guid, filter_index=0, num=3, exposure=120, order=1, label="L"),
        ShotSpec(guid=_guid(), target_guid=t.guid, filter_index=4, num=2, exposure=300, order=2, label="Ha"),
    ]
    for shot in shots:
        assert await rt.ensure_shot(shot) is True
        assert await rt.ensure_shot(shot) is False
    listed = await rt.get_shots(t.guid)
    assert [(x.guid, x.filter_index, x.num, x.exposure, x.done) for x in listed] == [
        (shots[0].guid, 0, 3, 120.0, 0), (shots[1].guid, 4, 2, 300.0, 0)]

    await rt.enable_disable(t.guid, wire.OBJECT_TARGET, enable=False)
    assert (await rt.get_target(t.guid)).status == 1
    await rt.enable_disable(t.guid, wire.OBJECT_TARGET, enable=True)
    assert (await rt.get_target(t.guid)).status == 0
    await rt.enable_disable(shots[1].guid, wire.OBJECT_SHOT, enable=False)
    assert [x.enabled for x in await rt.get_shots(t.guid)] == [True, False]

    await rt.abort(target_guid=t.guid)  # nothing running: still DONE
    await rt.remove_target(t.guid)
    assert await rt.get_targets(s.guid) == []
    with pytest.raises(VoyagerActionFailed) as info:
        await rt.remove_target(t.guid)
    assert info.value.param_ret["ret"] == wire.RET_NOT_FOUND


async def test_unknown_guids_fail_with_not_found(rt):
    for call in (rt.get_shots(_guid()), rt.get_sessions_by_run(_guid()), rt.get_shots_done(_guid()),
                 rt.get_shot_jpg(_guid()), rt.update_target(_guid(), priority=1)):
        with pytest.raises(VoyagerActionFailed) as info:
            await call
        assert info.value.param_ret["ret"] == wire.RET_NOT_FOUND


async def test_update_target_refuses_unknown_field_names(rt):
    with pytest.raises(ValueError):
        await rt.update_target(_guid(), altitude=3)


@pytest.mark.timeout(180)
async def test_multi_megabyte_jpg_is_read_through_get_shot_jpg_and_the_event_stream(sim_factory):
    # Full-size previews at quality 100: each JPG is ~3 MB, ~4 MB of Base64 on one line (§1).
    sim = await sim_factory(speed=0, start_time=EVENING, frame_width=3000, frame_height=2250, jpg_quality=100)
    settings = sim_settings(sim, command_timeout=30.0)
    async with pool_from_settings(settings, 2) as pool, event_stream_from_settings(settings, names={"NewJPGReady"}) as events:
        await events.wait_connected(10)
        rt = RoboTarget(pool)
        s = SetSpec(guid=_guid(), name="big", profile_name=sim.config.profile_name)
        t = m42(s.guid)
        await rt.add_set(s)
        await rt.add_target(t)
        await rt.add_shot(ShotSpec(guid=_guid(), target_guid=t.guid, filter_index=0, num=1, exposure=60))
        await sim.run_until(NEXT_MORNING)

        [session] = await rt.get_sessions_for_target(t.guid, sim.config.profile_name, days=2)
        [done] = await rt.get_shots_done(session.guid)
        jpg = await rt.get_shot_jpg(done.guid)
        assert len(jpg) > 2_000_000
        assert Image.open(io.BytesIO(jpg)).size == (3000, 2250)
        assert await rt.get_shot_jpg("", fit_filename=done.filename) == jpg

        event = await events.next(timeout=10)
        assert event.name == "NewJPGReady" and event.data["PixelDimX"] == 3000
        assert len(event.data["Base64Data"]) > 2_600_000


@pytest.mark.timeout(180)
async def test_a_runs_session_list_is_filtered_by_session_or_target(sim_factory):
    # A night's run lists every target's sessions; a watch asks for its own session only.
    sim = await sim_factory(speed=0, start_time=EVENING, frame_width=120, frame_height=90)
    async with pool_from_settings(sim_settings(sim), 2) as pool:
        rt = RoboTarget(pool)
        s = SetSpec(guid=_guid(), name="two", profile_name=sim.config.profile_name)
        targets = [m42(s.guid), m42(s.guid, name="M42 bis")]
        await rt.add_set(s)
        for t in targets:
            await rt.add_target(t)
            await rt.add_shot(ShotSpec(guid=_guid(), target_guid=t.guid, filter_index=0, num=1, exposure=60))
        await sim.run_until(NEXT_MORNING)

        [run] = [r for r in await rt.get_run_list(sim.config.profile_name, days=2)
                 if len(await rt.get_sessions_by_run(r.guid)) == 2]
        every = await rt.get_sessions_by_run(run.guid)
        assert {x.ref_guid_target for x in every} == {t.guid for t in targets}
        first = every[0]
        assert await rt.get_sessions_by_run(run.guid, session_guid=first.guid) == [first]
        assert await rt.get_sessions_by_run(run.guid, session_guid=_guid()) == []
        [mine] = await rt.get_sessions_by_run(run.guid, target_guid=targets[1].guid)
        assert mine.ref_guid_target == targets[1].guid and mine.finished
        assert await rt.get_sessions_for_target(targets[1].guid, sim.config.profile_name, days=2) == [mine]


async def test_one_connection_multiplexes_concurrent_commands(voyager_sim):
    # Replies are matched by id and results by UID, so many commands can share one link.
    async with connection_from_settings(sim_settings(voyager_sim)) as conn:
        calls = [conn.send_command(wire.M_GET_TARGET, {"RefGuidSet": ""}) if i % 2
                 else conn.send_command(protocol.M_GET_FILTER_CONFIGURATION) for i in range(40)]
        results = await asyncio.gather(*calls)
    assert len({r.uid for r in results}) == 40
    for i, r in enumerate(results):
        assert ("list" in r.param_ret) if i % 2 else (r.param_ret["FilterNum"] == 7)
