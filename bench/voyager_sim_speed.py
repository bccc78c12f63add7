"""Can the Voyager simulator keep up with its clock? Run: ``.venv/bin/python bench/voyager_sim_speed.py``.

Starts the simulator at ``--speed`` (default 3600) with ``--targets`` busy targets, a dashboard
client draining every event and a command client sending ``RemoteGetStatus`` every 0.5 s, for
``--seconds`` real seconds. Prints, beside the requested speed as the ceiling, the simulated time
the scheduler actually processed per real second, its worst lag behind the clock, frames made,
CPU use of the process and the command round trip (p50/max) under that load.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import resource
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from voyager import protocol, wire
from voyager.simulator import SimulatorConfig, VoyagerSimulator

WORDS = ["w1", "w2", "w3", "w4"]


class _Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: str) -> None:
        self.reader, self.writer, self.key, self.ids = reader, writer, key, itertools.count(1)

    @classmethod
    async def open(cls, port: int) -> _Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=protocol.MAX_LINE)
        raw = await reader.readline()
        return cls(reader, writer, protocol.timestamp_text(raw) or "")

    async def call(self, method: str, params: dict | None = None) -> dict:
        req_id, uid = next(self.ids), protocol.new_uid()
        params = dict(params or {}, UID=uid)
        if method == wire.M_MANAGER_MODE:
            params |= {wire.P_MAC_KEY: "K", wire.P_HASH: protocol.compute_mac(WORDS, self.key, req_id, uid)}
        elif wire.needs_mac(method):
            params[wire.P_MAC] = protocol.compute_mac(WORDS, self.key, req_id, uid)
        self.writer.write(protocol.encode_request(method, params, req_id))
        await self.writer.drain()
        while True:
            msg = protocol.decode_line(await self.reader.readline())
            if msg.get("Event") == protocol.E_ACTION_RESULT and msg.get("UID") == uid:
                return msg


async def _targets(c: _Client, n: int) -> None:
    set_guid = str(uuid.uuid4())
    await c.call(wire.M_ADD_SET, {"Guid": set_guid, "Name": "bench", "ProfileName": "Stellar.v2y", "IsDefault": False,
                                  "Status": 0, "Tag": "", "Note": ""})
    for i in range(n):
        target = str(uuid.uuid4())
        await c.call(wire.M_ADD_TARGET, dict(wire.TARGET_DEFAULTS) | {
            "GuidTarget": target, "RefGuidSet": set_guid, "TargetName": f"T{i}", "RAJ2000": (i * 24 / n) % 24,
            "DECJ2000": 30.0, "C_Mask": "B", "C_AltMin": 25, "C_HAStart": 0, "C_HAEnd": 0, "Priority": i % 5})
        for order, f in enumerate((0, 4)):
            await c.call(wire.M_ADD_SHOT, {"GuidShot": str(uuid.uuid4()), "RefGuidTarget": target, "FilterIndex": f,
                                           "Num": 500, "Bin": 1, "Exposure": 300, "Order": order, "Done": 0, "Enabled": True})


async def run(speed: float, seconds: float, n_targets: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        # idle_timeout: these raw clients send no Polling, and on a loaded machine a command waiting
        # behind the scheduler's lock outlasts Voyager's 15 s idle cutoff (the link would be dropped).
        sim = VoyagerSimulator(SimulatorConfig(
            port=0, mac_key="K", mac_words=WORDS, speed=speed, state_file=Path(tmp) / "state.json",
            fit_dir=Path(tmp) / "fits", start_time=datetime(2026, 1, 15, 16, 0, tzinfo=UTC), seed=1,
            idle_timeout=600.0))
        await sim.start()
        c, dash = await _Client.open(sim.port), await _Client.open(sim.port)
        await c.call(wire.M_MANAGER_MODE)
        await dash.call(protocol.M_DASHBOARD_MODE, {"IsOn": True})
        await _targets(c, n_targets)

        async def drain() -> None:
            while await dash.reader.readline():
                pass

        drainer = asyncio.create_task(drain())
        r0, t0, s0, f0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic(), sim.scheduler.now, len(sim.store.shots_done)
        rtts, lags = [], []
        while time.monotonic() - t0 < seconds:
            await asyncio.sleep(0.5)
            a = time.monotonic()
            await c.call(protocol.M_GET_STATUS)
            rtts.append((time.monotonic() - a) * 1000)
            lags.append(sim.clock.now() - sim.scheduler.now)
        elapsed = time.monotonic() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / elapsed * 100
        processed = (sim.scheduler.now - s0) / elapsed
        frames = len(sim.store.shots_done) - f0
        drainer.cancel()
        await sim.stop()
    return "\n".join([
        f"Voyager simulator, {n_targets} targets, 800x600 frames, {elapsed:.0f} s real (fast-forward included)",
        "",
        "| requested speed (ceiling) | processed sim s / real s | worst lag (sim s) | frames | CPU % | status p50 ms | status max ms |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {speed:g} | {processed:,.0f} | {max(lags):,.0f} | {frames} | {cpu:.0f} | {statistics.median(rtts):.1f} | {max(rtts):.1f} |",
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speed", type=float, default=3600.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--targets", type=int, default=10)
    args = ap.parse_args()
    print(asyncio.run(run(args.speed, args.seconds, args.targets)))


if __name__ == "__main__":
    main()
