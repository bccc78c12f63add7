"""Conformance: the simulator seen by a third-party dashboard, over raw TCP and WebSocket (§1, §4, §4a).

The client below indexes every field that independent public clients read (Voyager protocol §4a)
and checks its type and format, as those clients would fail on it. It sends the start-up commands
they send, then watches ten minutes of simulated night on a paused clock stepped by the test (so it
takes seconds): mount coordinates against astropy's position of the target being imaged, sequence
times against the RoboTarget session, weather and log lines.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from collections.abc import Callable
from typing import Any

import astropy.units as u
import pytest
from astropy.coordinates import TETE, AltAz, EarthLocation, SkyCoord
from astropy.time import Time

from tests.voyager.raw_client import SIM_START, RawClient
from tests.voyager.test_simulator_night import PROFILE, add_target_with_shots
from tests.voyager.ws_client import WsClient
from voyager import dashboard, protocol, wire

OHP = EarthLocation(lat=43.9308 * u.deg, lon=5.7133 * u.deg, height=650 * u.m)
M42 = (5.588, -5.39)
FAST = {"control_interval": 0.05, "weather_interval": 0.2}

HMS = re.compile(r"^\d{2}:\d{2}:\d{2}$")
DMS = re.compile(r"^[+-]?\d{2,3}° \d{2}' \d{2}\"$")
BOOL = {"SETUPCONN", "CCDCONN", "CCDCOOL", "MNTCONN", "MNTPARK", "MNTTRACK", "MNTSLEW", "GUIDECONN", "AFCONN",
        "PLACONN", "ROTCONN", "ROTISROT"}
ENUM = {"VOYSTAT": range(6), "CCDSTAT": range(10), "GUIDESTAT": range(4), "DITHSTAT": range(4)}
NUMBER = {"CCDTEMP", "CCDPOW", "CCDSETP", "GUIDEX", "GUIDEY", "AFPOS", "AFTEMP", "ROTPA", "ROTSKYPA"}
TEXT = {"RUNSEQ", "RUNDS", "SEQNAME"}
CLOCK_OR_EMPTY = {"SEQSTART", "SEQEND", "SEQREMAIN"}
HOURS = {"MNTRA", "MNTRAJ2000", "MNTTFLIP"}
DEGREES = {"MNTDEC", "MNTDECJ2000", "MNTAZ", "MNTALT"}
CONTROL_FIELDS = BOOL | set(ENUM) | NUMBER | TEXT | CLOCK_OR_EMPTY | HOURS | DEGREES | {"MNTPIER"}
WEATHER_TEXT = {"SMStatus": {"SAFE", "UNSAFE"}, "WSCloud": {"CLEAR", "CLOUDY", "VERY_CLOUDY"}}
STARTUP = [
    (protocol.M_DASHBOARD_MODE, {wire.DASHBOARD_IS_ON: True}),
    (protocol.M_SET_LOG_EVENT, {"IsOn": True, "Level": 0}),
    (protocol.M_MOUNT_STATUS, {}),
    (protocol.M_LIST_DRAGSCRIPTS, {}),
    (protocol.M_GET_STATUS, {}),
    (protocol.M_GET_FILTER_CONFIGURATION, {}),
    (protocol.M_GET_PROFILES, {}),
    (protocol.M_ACTION_ABORT, {"UID": "no-such-action"}),
]


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def control_problems(e: dict[str, Any]) -> list[str]:
    """What a client indexing every §4a ControlData field would trip on."""
    out = [f"missing {k}" for k in sorted(CONTROL_FIELDS - set(e))]
    for k in CONTROL_FIELDS & set(e):
        v = e[k]
        ok = ((k in BOOL and isinstance(v, bool)) or (k in ENUM and is_number(v) and v in ENUM[k])
              or (k in NUMBER and is_number(v)) or (k in TEXT and isinstance(v, str))
              or (k in CLOCK_OR_EMPTY and isinstance(v, str) and (v == "" or HMS.match(v)))
              or (k in HOURS and isinstance(v, str) and HMS.match(v))
              or (k in DEGREES and isinstance(v, str) and DMS.match(v))
              or (k == "MNTPIER" and v in {"pierEast", "pierWest"}))
        if not ok:
            out.append(f"{k}={v!r}")
    return out


def weather_problems(e: dict[str, Any]) -> list[str]:
    out = [f"{k}={e.get(k)!r}" for k in ("WSConnected", "SMConnected") if not isinstance(e.get(k), bool)]
    out += [f"{k}={e.get(k)!r}" for k, allowed in WEATHER_TEXT.items() if e.get(k) not in allowed]
    out += [f"{k}={e.get(k)!r}" for k in ("WSRain", "WSWind", "WSLight") if not isinstance(e.get(k), str)]
    return out


def log_problems(e: dict[str, Any]) -> list[str]:
    ok = is_number(e.get("TimeInfo")) and e.get("Type") in range(1, 11) and isinstance(e.get("Text"), str) and e["Text"]
    return [] if ok else [f"LogEvent {e!r}"]


def problems(e: dict[str, Any]) -> list[str]:
    name = e.get("Event")
    base = [f"{name}: no {k}" for k in ("Timestamp", "Host", "Inst") if k not in e]
    check = {"ControlData": control_problems, "WeatherAndSafetyMonitorData": weather_problems, "LogEvent": log_problems}
    return base + [f"{name}: {p}" for p in check.get(name, lambda _e: [])(e)]


def keep_alive(client: RawClient) -> asyncio.Task[None]:
    """Poll as every client does (§2.3), so a long simulated stretch does not get the link cut."""

    async def poll() -> None:
        while True:
            await asyncio.sleep(protocol.POLL_INTERVAL - 1)
            await client.send(protocol.make_polling())

    return asyncio.create_task(poll())


class Dashboard:
    """A third-party dashboard: reads everything as it comes, checks every event, keeps what it saw.

    It reads all the time, in a task of its own, as real dashboards do: a client that stopped
    reading while the test computes hours of night would stall the server's writes to it and, over
    WebSocket, miss its own keep-alive pongs (queued behind the unread events) and drop the link.
    Every wait below is bounded.
    """

    def __init__(self, client: RawClient) -> None:
        self.c = client
        self.events: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._inbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._poller = keep_alive(client)
        self._reader = asyncio.create_task(self._read_all())

    async def _read_all(self) -> None:
        while True:
            try:
                msg = await self.c.read(timeout=3600)
            except (TimeoutError, ConnectionError):
                msg = None
            if msg is not None and "Event" in msg:
                self.events.append(msg)
                self.errors += problems(msg)
            self._inbox.put_nowait(msg)
            if msg is None:
                return

    async def close(self) -> None:
        self._poller.cancel()
        self._reader.cancel()
        await asyncio.gather(self._poller, self._reader, return_exceptions=True)
        async with asyncio.timeout(20):
            await self.c.close()

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next message read (events are already checked and kept); fails when the link closed."""
        async with asyncio.timeout(timeout):
            msg = await self._inbox.get()
        assert msg is not None, "the dashboard's link closed"
        return msg

    async def wait_for(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> dict[str, Any]:
        """Read until a message matches ``pred`` (within ``timeout`` s in all)."""
        async with asyncio.timeout(timeout):
            while not pred(msg := await self.next(timeout)):
                pass
            return msg

    async def command(self, method: str, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        req_id, uid = await self.c.request(method, params)
        reply = result = None
        # Bounded in all, not per message: ControlData arrives every 50 ms, so a per-read timeout
        # alone would wait forever for an answer that never comes. Generous: the first mount
        # status of a process warms astropy up, which takes seconds on a loaded machine.
        async with asyncio.timeout(30):
            while reply is None or result is None:
                msg = await self.next()
                if protocol.is_reply(msg) and msg["id"] == req_id:
                    reply = msg
                elif msg.get("Event") == protocol.E_ACTION_RESULT and msg.get("UID") == uid:
                    result = msg
        return reply, result

    async def control_after(self, t: float) -> dict[str, Any]:
        """The first ControlData stamped at or after simulated time ``t``."""
        # Timestamps are printed with 1–5 decimals (§2.1): one may read up to 0.05 s early.
        return await self.wait_for(lambda m: m.get("Event") == "ControlData" and float(m["Timestamp"]) >= t - 0.06, 60)

    async def drain(self, seconds: float = 0.5) -> None:
        """Let ``seconds`` of messages come in (ControlData never lets the link go quiet)."""
        await asyncio.sleep(seconds)
        while not self._inbox.empty():
            assert self._inbox.get_nowait() is not None, "the dashboard's link closed"


async def open_dashboard(sim, transport: str) -> Dashboard:
    client = await (WsClient if transport == "ws" else RawClient).connect(sim.port)
    await client.login(manager=False)
    return Dashboard(client)


async def start_up(dash: Dashboard) -> dict[str, dict[str, Any]]:
    """The start-up commands of §4a: each has reply 0 and a RemoteActionResult 4; → ParamRet by method."""
    rets = {}
    for method, params in STARTUP:
        reply, result = await dash.command(method, params)
        assert reply["result"] == 0 and result["ActionResultInt"] == 4, (method, reply, result)
        rets[method] = result["ParamRet"]
    req_id, _ = await dash.c.request("RemoteNoSuchMethod", {})
    reply = await dash.wait_for(lambda m: protocol.is_reply(m) and m["id"] == req_id)
    assert reply["error"]["code"] == -32601  # as Voyager: JSON-RPC "Method not found", no result
    return rets


def parse_clock(text: str) -> int:
    h, m, s = (int(p) for p in text.split(":"))
    return h * 3600 + m * 60 + s


async def running_session(manager: RawClient) -> dict[str, Any]:
    runs = (await manager.robotarget(wire.M_GET_RUN_LIST, {"ProfileName": PROFILE, "Days": 0}))[wire.LIST]
    for run in runs:
        for s in (await manager.robotarget(wire.M_GET_SESSIONS_BY_RUN, {"RefGuidRun": run["guid"]}))[wire.LIST]:
            if s["result"] == wire.SESSION_RUNNING:
                return s
    raise AssertionError("no running session")


@pytest.mark.parametrize("transport", ["tcp", "ws"])
async def test_a_dashboard_follows_ten_minutes_of_night(night_sim, raw_client, transport):
    sim = await night_sim(**FAST)
    dash = await open_dashboard(sim, transport)
    try:
        rets = await start_up(dash)
        assert rets[protocol.M_MOUNT_STATUS]["FlipStatus"] == 0 and rets[protocol.M_MOUNT_STATUS]["IsParked"] is True
        assert rets[protocol.M_LIST_DRAGSCRIPTS][wire.LIST] and all(isinstance(n, str) for n in rets[protocol.M_LIST_DRAGSCRIPTS][wire.LIST])
        assert rets[protocol.M_GET_STATUS][wire.STATUS_KEY] == "IDLE"

        manager = await raw_client(sim)
        await manager.login()
        polling = keep_alive(manager)
        await add_target_with_shots(manager, [(0, 30, 60)])
        t = SIM_START + timedelta(hours=5)
        async with asyncio.timeout(240):  # bounded: computing the evening takes seconds, not minutes
            while sim.scheduler.active is None:
                assert t < SIM_START + timedelta(hours=16), "the target never started"
                t += timedelta(minutes=10)
                await sim.run_until(t)
        session = await running_session(manager)
        polling.cancel()
        target = SkyCoord(ra=M42[0] * 15 * u.deg, dec=M42[1] * u.deg, frame="icrs")

        checked = 0
        for _ in range(30):  # 30 × 20 s = ten minutes of simulated night
            await asyncio.wait_for(sim.advance(20), 60)
            e = await dash.control_after(sim.clock.now())
            ts = float(e["Timestamp"])
            assert e["VOYSTAT"] == 2 and e["SEQNAME"] == "M42" and e["MNTTRACK"] is True and e["MNTPARK"] is False
            when = Time(ts, format="unix")
            altaz = target.transform_to(AltAz(obstime=when, location=OHP))
            now = target.transform_to(TETE(obstime=when, location=OHP))
            # Each value within its text's resolution (1 s of RA, 1″ of arc) plus 1″.
            assert abs(dashboard.number(e["MNTALT"]) - altaz.alt.deg) * 3600 < 2.0
            assert abs(dashboard.number(e["MNTAZ"]) - altaz.az.deg) * 3600 < 2.0
            assert abs(dashboard.number(e["MNTDECJ2000"]) - M42[1]) * 3600 < 1.5
            assert abs(dashboard.number(e["MNTRAJ2000"]) - M42[0]) * 3600 * 15 < 8.5
            assert abs(dashboard.number(e["MNTDEC"]) - now.dec.deg) * 3600 < 1.5
            assert abs(dashboard.number(e["MNTRA"]) - now.ra.hour) * 3600 * 15 < 8.5
            ha = (now.ra.hour - when.sidereal_time("apparent", longitude=OHP.lon).hour + 12) % 24 - 12  # −HA
            assert e["MNTPIER"] == ("pierWest" if ha > 0 else "pierEast")
            # Sequence times: the session's start, an end still ahead, and the time between.
            assert e["SEQSTART"] == datetime.fromtimestamp(session["datetimestart"], tz=UTC).strftime("%H:%M:%S")
            remain = parse_clock(e["SEQREMAIN"])
            assert 0 < remain <= 30 * 90
            assert abs((parse_clock(e["SEQEND"]) - int(ts) % 86400) % 86400 - remain) <= 2
            checked += 1
        mount = (await dash.command(protocol.M_MOUNT_STATUS, {}))[1]["ParamRet"]
        assert mount["FlipStatus"] in (1, 3) and mount["IsTracking"] is True
        await dash.drain()
    finally:
        await dash.close()

    assert checked == 30 and not dash.errors, dash.errors[:10]
    names = [e["Event"] for e in dash.events]
    assert names.count("ControlData") >= 30 and "WeatherAndSafetyMonitorData" in names
    weather = [e for e in dash.events if e["Event"] == "WeatherAndSafetyMonitorData"]
    assert weather[-1]["SMStatus"] == "SAFE" and weather[-1]["WSCloud"] == "CLEAR"
    logs = [e for e in dash.events if e["Event"] == "LogEvent"]
    assert any(e["Type"] == 10 and "start of target M42" in e["Text"] for e in logs)
    assert any(e["Type"] == 2 and e["Text"].startswith("Slew to M42") for e in logs)
    assert any(e["Type"] == 2 and e["Text"].startswith("Frame saved") for e in logs)


async def test_a_whole_night_with_an_abort_and_clouds_gives_no_missing_key(night_sim, raw_client):
    # Several targets, one aborted, then clouds: every event of the night parses.
    sim = await night_sim(**FAST)
    dash = await open_dashboard(sim, "tcp")
    await start_up(dash)
    manager = await raw_client(sim)
    await manager.login()
    polling = keep_alive(manager)
    m45, _ = await add_target_with_shots(manager, [(0, 4, 120)], name="M45", ra=3.79, dec=24.1, Priority=4)
    m42, _ = await add_target_with_shots(manager, [(0, 40, 120)], name="M42", ra=M42[0], dec=M42[1], Priority=3)
    await add_target_with_shots(manager, [(0, 40, 120)], name="M51", ra=13.497, dec=47.195, Priority=2)
    t, aborted, clouded = SIM_START, False, False
    while t < SIM_START + timedelta(hours=22):
        t += timedelta(minutes=15)
        await sim.run_until(t)
        act = sim.scheduler.active
        if act is not None and act.target_guid == m42 and not aborted:
            _, result = await dash.command(wire.M_ABORT, {"RefGuidTarget": m42, "RefGuidSet": "", "RefGuidTargetTag": "",
                                                         "RefGuidSetTag": "", "MAC": ""})
            # A dashboard without manager mode is refused; the manager aborts the target.
            assert result["ActionResultInt"] == 5
            await manager.robotarget(wire.M_ABORT, {"RefGuidTarget": m42, "RefGuidSet": "", "RefGuidTargetTag": "",
                                                    "RefGuidSetTag": ""})
            aborted = True
        elif act is not None and aborted and not clouded:
            sim.cloud_out()
            clouded = True
        await dash.control_after(sim.clock.now())
    await dash.drain()
    await dash.close()
    polling.cancel()

    assert aborted and clouded and not dash.errors, dash.errors[:10]
    names = [e["Event"] for e in dash.events]
    assert names.count("ControlData") >= 88 and "NewJPGReady" in names
    weather = [e for e in dash.events if e["Event"] == "WeatherAndSafetyMonitorData"]
    assert any(e["SMStatus"] == "UNSAFE" and e["WSCloud"] == "CLOUDY" for e in weather)
    logs = [e["Text"] for e in dash.events if e["Event"] == "LogEvent"]
    assert any("Safety monitor UNSAFE" in x for x in logs) and any("end of target M42" in x for x in logs)
    controls = [e for e in dash.events if e["Event"] == "ControlData"]
    assert {e["SEQNAME"] for e in controls} >= {"", "M45", "M51"}  # M42 was aborted as soon as it ran
    parked = [e for e in controls if e["VOYSTAT"] == 1]
    assert parked and all(e["MNTPARK"] and e["SEQSTART"] == "" and e["MNTTFLIP"] == "00:00:00" for e in parked)
