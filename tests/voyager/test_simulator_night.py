"""Targets added through RoboTarget commands are observed through simulated nights (docs/voyager-protocol.md §6–§9)."""

from __future__ import annotations

import base64
import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from astropy import units as u
from astropy.coordinates import AltAz, EarthLocation, get_sun
from astropy.io import fits
from astropy.time import Time
from PIL import Image

from tests.voyager.raw_client import SIM_START, RawClient
from voyager import protocol, wire

PROFILE = "Stellar.v2y"
OHP = EarthLocation(lat=43.9308 * u.deg, lon=5.7133 * u.deg, height=650 * u.m)


def night_end(nights: int = 1) -> datetime:
    """Noon after the ``nights``-th night from SIM_START."""
    return SIM_START + timedelta(days=nights)


async def add_target_with_shots(
    c: RawClient,
    shots: list[tuple[int, int, float]],
    *,
    name: str = "M42",
    ra: float = 5.588,
    dec: float = -5.39,
    set_guid: str | None = None,
    **fields: Any,
) -> tuple[str, list[str]]:
    """Add (a set,) a target and its shots ``(filter_index, num, exposure_s)``; returns (target, shot GUIDs)."""
    if set_guid is None:
        set_guid = str(uuid.uuid4())
        await c.robotarget(wire.M_ADD_SET, {"Guid": set_guid, "Name": f"set-{name}", "ProfileName": PROFILE,
                                            "IsDefault": False, "Status": 0, "Tag": "", "Note": ""})
    target = str(uuid.uuid4())
    params = dict(wire.TARGET_DEFAULTS) | {"GuidTarget": target, "RefGuidSet": set_guid, "TargetName": name,
                                           "RAJ2000": ra, "DECJ2000": dec, "C_Mask": "B", "C_AltMin": 25,
                                           "C_HAStart": 0, "C_HAEnd": 0, "IsRepeat": True, "Repeat": 1}
    params.update(fields)
    await c.robotarget(wire.M_ADD_TARGET, params)
    guids = []
    for order, (filter_index, num, exposure) in enumerate(shots):
        guid = str(uuid.uuid4())
        await c.robotarget(wire.M_ADD_SHOT, {"GuidShot": guid, "RefGuidTarget": target, "Label": "", "FilterIndex": filter_index,
                                             "Num": num, "Bin": 1, "ReadoutMode": 0, "Type": 0, "Speed": 0, "Gain": 0,
                                             "Offset": 0, "Exposure": exposure, "Order": order, "Done": 0, "Enabled": True})
        guids.append(guid)
    return target, guids


async def history(c: RawClient) -> list[tuple[dict, dict, list[dict]]]:
    """Every (run, session, shots done) the simulator reports, oldest first."""
    out = []
    runs = (await c.robotarget(wire.M_GET_RUN_LIST, {"ProfileName": PROFILE, "Days": 0}))[wire.LIST]
    for run in runs:
        for s in (await c.robotarget(wire.M_GET_SESSIONS_BY_RUN, {"RefGuidRun": run["guid"]}))[wire.LIST]:
            done = (await c.robotarget(wire.M_GET_SHOTS_DONE, {"RefGuidSession": s["guid"]}))[wire.LIST]
            out.append((run, s, done[wire.SHOTS_DONE_KEY]))
    return out


def sun_alt(epoch: float) -> float:
    t = Time(epoch, format="unix")
    return float(get_sun(t).transform_to(AltAz(obstime=t, location=OHP)).alt.deg)


async def test_a_target_is_observed_through_a_night_with_fits_and_jpgs(night_sim, raw_client):
    sim = await night_sim()
    c = await raw_client(sim)
    await c.login()
    dash = await raw_client(sim)
    await dash.login(manager=False)
    await dash.command(protocol.M_DASHBOARD_MODE, {wire.DASHBOARD_IS_ON: True})
    target, shots = await add_target_with_shots(c, [(0, 3, 300), (4, 2, 600)])

    await sim.run_until(night_end())

    [(run, session, done)] = await history(c)
    assert run["datetimeend"] > run["datetimestart"] > 0
    assert sun_alt(run["datetimestart"]) < -18 and sun_alt(run["datetimeend"]) < -17.5
    assert session["refguidtarget"] == target and session["result"] == wire.SESSION_OK
    assert session["progress"] == 100 and session["sessionexittext"] == "Sequence completed"
    assert run["datetimestart"] <= session["datetimestart"] < session["datetimeend"] <= run["datetimeend"]
    assert [d["refguidshot"] for d in done] == [shots[0]] * 3 + [shots[1]] * 2
    assert [d["filterindex"] for d in done] == [0, 0, 0, 4, 4] and not any(d["isdeleted"] for d in done)
    # Frames follow each other: exposure + overhead apart, all inside the session.
    gaps = np.diff([d["datetimeshot"] for d in done])
    assert list(gaps) == [330, 330, 330, 630]
    shot_list = (await c.robotarget(wire.M_GET_SHOT, {"RefGuidTarget": target}))[wire.LIST]
    assert [(s["guid"], s["done"], s["num"]) for s in shot_list] == [(shots[0], 3, 3), (shots[1], 2, 2)]

    first = done[0]
    assert first["filename"] == "M42_L_300s_001.fit" and set(first) >= set(wire.SHOT_DONE_ITEM.values())
    assert 1.0 < first["hfd"] < 8.0 and first["starindex"] > 0 and first["min"] < first["mean"] < first["max"]
    with fits.open(Path(first["path"]) / first["filename"]) as hdul:
        h = hdul[0].header
        assert h["OBJECT"] == "M42" and h["EXPTIME"] == 300 and h["FILTER"] == "L"
        assert abs(h["RA"] - 5.588 * 15) < 1e-6 and abs(h["DEC"] + 5.39) < 1e-6
        assert int(datetime.fromisoformat(h["DATE-OBS"]).replace(tzinfo=UTC).timestamp()) == first["datetimeshot"]
        assert hdul[0].data.shape == (150, 200)
    ha = done[3]
    with fits.open(Path(ha["path"]) / ha["filename"]) as hdul:
        assert hdul[0].header["FILTER"] == "Ha" and hdul[0].header["EXPTIME"] == 600

    jpg = await c.robotarget(wire.M_GET_SHOT_JPG, {"RefGuidShotDone": first["guid"], "FITFileName": ""})
    image = Image.open(io.BytesIO(base64.b64decode(jpg[wire.JPG_DATA])))
    assert image.format == "JPEG" and image.size == (200, 150)
    by_name = await c.robotarget(wire.M_GET_SHOT_JPG, {"RefGuidShotDone": "", "FITFileName": first["filename"]})
    assert by_name[wire.JPG_DATA] == jpg[wire.JPG_DATA]

    # Dashboard events reached the dashboard client only.
    events = await dash.drain_events()
    names = [e.get("Event") for e in events]
    assert names.count("NewJPGReady") == 5 and names.count("NewFITReady") == 5
    assert "ShotRunning" in names and {18, 502, 501} <= {e["Code"] for e in events if e.get("Event") == "Signal"}
    jpg_event = next(e for e in events if e.get("Event") == "NewJPGReady")
    assert jpg_event["SequenceTarget"] == "M42" and jpg_event["Filter"] == "L" and jpg_event["HFD"] == first["hfd"]
    assert Image.open(io.BytesIO(base64.b64decode(jpg_event["Base64Data"]))).size == (200, 150)
    fit_event = next(e for e in events if e.get("Event") == "NewFITReady")
    assert fit_event["File"] == str(Path(first["path"]) / first["filename"]) and fit_event["VoyType"] == "SHOT"
    plain = c.seen + [e.get("Event") for e in await c.drain_events()]
    assert "NewJPGReady" not in plain and "ShotRunning" not in plain and "NewFITReady" in plain


async def test_frames_above_the_hfd_limit_are_marked_deleted_and_retaken(night_sim, raw_client):
    sim = await night_sim(seeing_arcsec=2.0)
    c = await raw_client(sim)
    await c.login()
    target, [shot] = await add_target_with_shots(c, [(0, 6, 300)], C_HFDMeanLimit=3.3)
    await sim.run_until(night_end())
    frames = [d for _, _, done in await history(c) for d in done]
    deleted = [d for d in frames if d["isdeleted"]]
    kept = [d for d in frames if not d["isdeleted"]]
    assert len(kept) == 6 and deleted, [d["hfd"] for d in frames]
    assert all(d["hfd"] > 3.3 for d in deleted) and all(d["hfd"] <= 3.3 for d in kept)
    assert (await c.robotarget(wire.M_GET_SHOT, {"RefGuidTarget": target}))[wire.LIST][0]["done"] == 6


async def test_repeat_spreads_the_work_over_nights(night_sim, raw_client):
    sim = await night_sim()
    c = await raw_client(sim)
    await c.login()
    target, [shot] = await add_target_with_shots(c, [(1, 6, 300)], IsRepeat=True, Repeat=3)
    await sim.run_until(night_end(4))
    sessions = await history(c)
    assert [len(done) for _, _, done in sessions] == [2, 2, 2]
    assert len({run["guid"] for run, _, _ in sessions}) == 3  # one run per night
    assert all(s["result"] == wire.SESSION_OK and s["progress"] == 100 for _, s, _ in sessions)


async def test_without_repeat_a_target_gets_one_night_only(night_sim, raw_client):
    sim = await night_sim()
    c = await raw_client(sim)
    await c.login()
    # A 1.5 h hour-angle window holds 4 frames of 20 min: 10 frames cannot finish in one night.
    one, _ = await add_target_with_shots(c, [(0, 10, 1170)], name="once", IsRepeat=False,
                                         C_Mask="DE", C_HAStart=-0.75, C_HAEnd=0.75)
    again, _ = await add_target_with_shots(c, [(0, 10, 1170)], name="again", ra=11.0, dec=30.0, IsRepeat=True,
                                           Repeat=1, C_Mask="DE", C_HAStart=-0.75, C_HAEnd=0.75)
    await sim.run_until(night_end(2))
    by_target: dict[str, list] = {}
    for run, s, done in await history(c):
        by_target.setdefault(s["refguidtarget"], []).append((run["guid"], s, done))
    assert len({r for r, _, _ in by_target[one]}) == 1  # first night only
    assert len({r for r, _, _ in by_target[again]}) == 2  # comes back the next night
    once_session = by_target[one][0][1]
    assert once_session["sessionexittext"] == "Target constraints no longer met" and once_session["progress"] < 100
    assert sum(len(d) for _, _, d in by_target[one]) == 4


async def test_robotarget_abort_stops_the_session_and_it_resumes_next_night(night_sim, raw_client):
    sim = await night_sim()
    c = await raw_client(sim)
    await c.login()
    target, _ = await add_target_with_shots(c, [(0, 30, 600)], IsRepeat=True, Repeat=1)
    await sim.run_until(SIM_START + timedelta(hours=9))  # 21:00 UTC, mid-session
    _, status = await c.command(protocol.M_GET_STATUS)
    assert status["ParamRet"][wire.STATUS_KEY] == "RUN"
    await c.robotarget(wire.M_ABORT, {"RefGuidTarget": target, "RefGuidSet": "", "RefGuidTargetTag": "", "RefGuidSetTag": ""})
    _, status = await c.command(protocol.M_GET_STATUS)
    assert status["ParamRet"][wire.STATUS_KEY] == "IDLE"
    await sim.run_until(night_end(2))
    sessions = await history(c)
    assert sessions[0][1]["result"] == wire.SESSION_ABORTED
    assert sessions[0][1]["datetimeend"] == int((SIM_START + timedelta(hours=9)).timestamp())
    assert len(sessions) == 2 and sessions[1][0]["guid"] != sessions[0][0]["guid"]  # not restarted that night
    assert sessions[1][1]["result"] == wire.SESSION_OK


async def test_disabled_targets_and_sets_are_not_observed(night_sim, raw_client):
    sim = await night_sim()
    c = await raw_client(sim)
    await c.login()
    target, _ = await add_target_with_shots(c, [(0, 2, 300)], Status=1)
    other, _ = await add_target_with_shots(c, [(0, 2, 300)], name="M1", ra=5.575, dec=22.01)
    other_set = next(t["refguidset"] for t in (await c.robotarget(wire.M_GET_TARGET, {"RefGuidSet": ""}))[wire.LIST]
                     if t["guid"] == other)
    await c.robotarget(wire.M_ENABLE_DISABLE, {"RefGuidObject": other_set, "ObjectType": 2, "OperationType": 1})
    await sim.run_until(night_end())
    assert await history(c) == []
    await c.robotarget(wire.M_ENABLE_DISABLE, {"RefGuidObject": target, "ObjectType": 1, "OperationType": 0})
    await sim.run_until(night_end(2))
    assert {s["refguidtarget"] for _, s, _ in await history(c)} == {target}


async def test_store_commands_validate_and_detect_duplicates(night_sim, raw_client):
    sim = await night_sim()
    c = await raw_client(sim)
    await c.login()
    target, [shot] = await add_target_with_shots(c, [(0, 1, 60)])
    items = (await c.robotarget(wire.M_GET_TARGET, {"RefGuidSet": ""}))[wire.LIST]
    assert [(i["guid"], i["targetname"], i["raj2000"], i["decj2000"], i["status"], i["priority"]) for i in items] == [
        (target, "M42", 5.588, -5.39, 0, 2)]
    params = dict(wire.TARGET_DEFAULTS) | {"GuidTarget": target, "RefGuidSet": items[0]["refguidset"], "TargetName": "x"}
    _, dup = await c.command(wire.M_ADD_TARGET, params)
    assert dup["ActionResultInt"] == 5 and dup["ParamRet"][wire.RET] == wire.RET_DUPLICATE
    _, missing = await c.command(wire.M_REMOVE_TARGET, {"RefGuidTarget": str(uuid.uuid4())})
    assert missing["ParamRet"][wire.RET] == wire.RET_NOT_FOUND
    _, bad = await c.command(wire.M_ADD_TARGET, params | {"GuidTarget": str(uuid.uuid4()), "RAJ2000": 25.0})
    assert bad["ParamRet"][wire.RET].startswith(wire.RET_ERROR_PREFIX)
    await c.robotarget(wire.M_UPDATE_TARGET, {"RefGuidTarget": target, "Priority": 4, "TargetName": "M42b"})
    items = (await c.robotarget(wire.M_GET_TARGET, {"RefGuidSet": ""}))[wire.LIST]
    assert (items[0]["priority"], items[0]["targetname"]) == (4, "M42b")
    await c.robotarget(wire.M_REMOVE_TARGET, {"RefGuidTarget": target})
    assert (await c.robotarget(wire.M_GET_TARGET, {"RefGuidSet": ""}))[wire.LIST] == []
    _, gone = await c.command(wire.M_GET_SHOT, {"RefGuidTarget": target})
    assert gone["ParamRet"][wire.RET] == wire.RET_NOT_FOUND
