"""The simulator on a running clock: fast-forward, dashboard telemetry, and the command line (docs/voyager-protocol.md §4, §9)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.voyager.conftest import SIM_MAC_KEY, SIM_PASSWORD, SIM_USER, SIM_WORDS
from tests.voyager.raw_client import RawClient
from tests.voyager.test_simulator_night import add_target_with_shots, history
from voyager import protocol, wire

ROOT = Path(__file__).resolve().parents[2]


async def test_idle_afternoon_is_fast_forwarded_and_telemetry_flows(night_sim, raw_client):
    # At 60x, noon → dusk would take 6 real minutes; the fast-forward makes it seconds.
    sim = await night_sim(speed=60.0, control_interval=0.5, weather_interval=0.5)
    c = await raw_client(sim)
    await c.login()
    dash = await raw_client(sim)
    await dash.login(manager=False)
    await dash.command(protocol.M_DASHBOARD_MODE, {wire.DASHBOARD_IS_ON: True})
    target, _ = await add_target_with_shots(c, [(0, 1, 300)])  # 330 s simulated = 5.5 s real
    t0 = time.monotonic()
    deadline = t0 + 40
    while True:
        sessions = await history(c)
        if sessions and sessions[0][1]["result"] != wire.SESSION_RUNNING:
            break
        assert time.monotonic() < deadline, "no session finished"
        await asyncio.sleep(0.5)
    assert time.monotonic() - t0 < 40
    [(_, session, done)] = sessions
    assert session["result"] == wire.SESSION_OK and len(done) == 1

    events = await dash.drain_events()
    running = [e for e in events if e.get("Event") == "ShotRunning" and e["Status"] == 1 and 0 < e["ElapsedPerc"] < 100]
    assert running, "no ShotRunning while exposing"
    control = [e for e in events if e.get("Event") == "ControlData"]
    assert any(e["VOYSTAT"] == 2 and e["RUNSEQ"] == "M42" for e in control)
    assert all({"VOYSTAT", "SETUPCONN", "CCDTEMP", "MNTRAJ2000", "MNTDECJ2000", "MNTALT", "GUIDESTAT"} <= set(e) for e in control)
    weather = [e for e in events if e.get("Event") == "WeatherAndSafetyMonitorData"]
    assert weather and weather[-1]["SMStatus"] == "SAFE" and weather[-1]["WSCloud"] == "CLEAR"
    # With nothing left to do the clock runs at its own speed again.
    before_sim, before_real = sim.clock.now(), time.monotonic()
    await asyncio.sleep(1.0)
    assert (sim.clock.now() - before_sim) / (time.monotonic() - before_real) < 120


async def test_day_after_a_multi_night_share_is_fast_forwarded(night_sim, raw_client):
    # Repeat 2 spreads 2 frames over 2 nights: after tonight's frame the target is idle until the
    # next night. At 60x that idle day would take ~24 real minutes without the fast-forward.
    sim = await night_sim(speed=60.0)
    c = await raw_client(sim)
    await c.login()
    await add_target_with_shots(c, [(0, 2, 300)], Repeat=2)
    t0 = time.monotonic()
    while True:
        sessions = await history(c)
        done = [d for _, s, ds in sessions if s["result"] != wire.SESSION_RUNNING for d in ds]
        if len(done) >= 2:
            break
        assert time.monotonic() - t0 < 60, f"second night not reached: {len(sessions)} sessions"
        await asyncio.sleep(0.5)
    nights = {d["datetimeshot"] // 86400 for d in done}
    assert len(sessions) == 2 and len(nights) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_command_line_serves_and_shuts_down_cleanly_on_ctrl_c(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STELLAR_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "stellar_cli", "voyager-sim", "--host", "127.0.0.1", "--port", str(port),
         "--username", SIM_USER, "--password", SIM_PASSWORD, "--mac-key", SIM_MAC_KEY, "--mac-words", ",".join(SIM_WORDS),
         "--speed", "3600", "--state-file", str(tmp_path / "state.json"), "--fit-dir", str(tmp_path / "fits"),
         "--start-time", "2026-01-15T12:00:00Z"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        c = None
        for _ in range(120):
            try:
                c = await RawClient.connect(port)
                break
            except OSError:
                await asyncio.sleep(0.25)
        assert c is not None, proc.stdout.read().decode() if proc.poll() is not None else "no port"
        await c.login()
        _, status = await c.command(protocol.M_GET_STATUS)
        assert status["ParamRet"][wire.STATUS_KEY] in ("IDLE", "RUN")
        assert abs(float(c.session_key) - 1768478400) < 86400  # the clock started at --start-time
        proc.send_signal(signal.SIGINT)
        assert await c.closed(10)
        assert protocol.E_SHUTDOWN in [m.get("Event") for m in c.backlog]
        await c.close()
        assert proc.wait(10) == 0
        assert (tmp_path / "state.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
