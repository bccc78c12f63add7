"""``VoyagerSimulator``: the embedded Voyager Application Server with RoboTarget (docs/voyager-protocol.md §9).

A real asyncio TCP server; a client opening with an HTTP Upgrade gets a WebSocket on the same port
(``transport.py``). Background tasks: the **driver** (runs the scheduler on the simulated
clock, fast-forwards while idle with work pending, emits ``ShotRunning`` at most every
``shot_running_interval`` real seconds during a frame), the **persister** (saves the store when
dirty, at most every ``persist_interval`` s), ``ControlData`` every ``control_interval`` s and
``WeatherAndSafetyMonitorData`` every ``weather_interval`` s to dashboard clients, and the
``drop_interval`` fault.

Test API: ``start``/``stop`` (ShutDown to clients), ``crash``/``restart`` (state kept from the state
file), ``run_until``/``advance`` (deterministic stepping with a paused clock), ``faults``,
``drop_connections``, ``cloud_out``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from datetime import datetime
from typing import Any

import structlog

from voyager import protocol
from voyager.errors import VoyagerProtocolError
from voyager.simulator import transport
from voyager.simulator.clock import SimClock, to_epoch
from voyager.simulator.commands import Commands
from voyager.simulator.config import SimulatorConfig
from voyager.simulator.faults import Faults
from voyager.simulator.link import SessionLink
from voyager.simulator.mount import Mount
from voyager.simulator.planner import Planner
from voyager.simulator.scheduler import Scheduler
from voyager.simulator.session import ClientSession
from voyager.simulator.sky import Sky
from voyager.simulator.store import Store
from voyager.simulator.telemetry import Telemetry

log = structlog.get_logger(__name__)


class VoyagerSimulator:
    """The simulator. ``port`` is the bound port after :meth:`start` (config port 0 = a free one)."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.faults = Faults.from_config(config.faults)
        self.seed = config.seed if config.seed is not None else random.randrange(1 << 31)
        self.sky = Sky(config.latitude, config.longitude, config.elevation, config.grid_step)
        self.mount = Mount(config.latitude, config.longitude, config.elevation)
        self.sessions: set[ClientSession] = set()
        self.port = config.port
        self.clock: SimClock | None = None
        self.store: Store
        self.planner: Planner
        self.scheduler: Scheduler
        self.telemetry: Telemetry
        self.commands: Commands
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._nudge = asyncio.Event()
        self._last_poke = 0.0
        self.fast_forward_nights = 0

    # ------------------------------------------------------------ life cycle

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Load the state file (if any), bind the port, start the background tasks."""
        cfg = self.config
        store = Store(cfg.state_file, cfg.profile_name)
        loaded = await asyncio.to_thread(store.load)
        if self.clock is None:  # a restart in the same process keeps its running clock
            start: float | datetime | None = store.clock if loaded and store.clock else cfg.start_time
            self.clock = SimClock(start, cfg.speed)
        self.store = store
        self.planner = Planner(self.sky, store, self.faults, cfg.horizon_alt, cfg.cloud_probability, self.seed)
        self.scheduler = Scheduler(cfg, store, self.sky, self.planner, self.faults, self.emit, self.clock.now())
        self.scheduler.recover(self.clock.now())
        # The parts get what they use, rebuilt with the store on every (re)start.
        self.telemetry = Telemetry(cfg, self.seed, self.sky, self.mount, store, self.scheduler, self.planner)
        self.commands = Commands(cfg, self.faults, self.clock, store, self.scheduler, self.telemetry, self.poke)
        # asyncio.start_server's protocol, whose bytes go straight to the session once it runs (link.py).
        self._server = await asyncio.get_running_loop().create_server(
            lambda: SessionLink(self._on_client, protocol.MAX_LINE), cfg.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self._tasks = [asyncio.create_task(c) for c in (self._drive(), self._persist(), self._control(), self._weather(), self._dropper())]
        log.info("voyager_sim.started", host=cfg.host, port=self.port, speed=self.clock.speed, auth=cfg.auth_enabled,
                 sim_time=self.clock.now_dt().isoformat(), state_file=str(cfg.state_file or ""))

    async def stop(self) -> None:
        """Clean shutdown: ``ShutDown`` to every client, close, save the state."""
        if self._server is None:
            return
        for s in list(self.sessions):
            s.event(protocol.E_SHUTDOWN)
        await asyncio.gather(*(s.close(flush=True) for s in list(self.sessions)), return_exceptions=True)
        await self._halt()
        self.store.save(self.clock.now())
        log.info("voyager_sim.stopped", port=self.port)

    async def crash(self) -> None:
        """Die abruptly: links cut without ``ShutDown``, nothing saved beyond what the file holds."""
        if self._server is None:
            return
        for s in list(self.sessions):
            s.abort()
        await self._halt()
        log.info("voyager_sim.crashed", port=self.port)

    async def restart(self) -> None:
        """Start again on the same port from the state file (after :meth:`crash` or :meth:`stop`)."""
        await self.start()

    async def _halt(self) -> None:
        server, self._server = self._server, None
        server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        # The scheduler may be mid-step in a worker thread; let it finish before the store goes.
        async with self.scheduler.lock:
            pass
        await self.scheduler.settle()  # a frame's files still being written by a worker thread
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await server.wait_closed()

    async def __aenter__(self) -> VoyagerSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Raw TCP or WebSocket on the same port (§1): told apart by what the client sends first.
        try:
            framing, pending = await transport.sniff(reader, writer, self.config.upgrade_wait)
        except (VoyagerProtocolError, OSError, TimeoutError) as exc:
            log.info("voyager_sim.upgrade_failed", error=str(exc))
            writer.close()
            return
        # Looked up per request: the method table is rebuilt on restart (and tests tap ``commands.run``).
        session = ClientSession(self.config, self.clock, lambda *request: self.commands.run(*request),
                                self.sessions.discard, reader, writer, framing, pending)
        self.sessions.add(session)
        await session.run()

    # ------------------------------------------------------------ events

    def emit(self, name: str, t: float, dashboard_only: bool, **fields: Any) -> None:
        """Send an event to every authenticated client (``dashboard_only``: those in dashboard mode).

        ``LogEvent`` goes only to the clients that turned it on with ``RemoteSetLogEvent`` (§4a).
        """
        for s in list(self.sessions):
            if not s.authenticated:
                continue
            wanted = s.log_events if name == protocol.E_LOG else (s.dashboard or not dashboard_only)
            if wanted:
                s.event(name, t, **fields)

    def poke(self) -> None:
        """The store changed: let the scheduler re-plan now."""
        self._last_poke = time.monotonic()
        self.fast_forward_nights = 0
        self.scheduler.poke(self.clock.now())
        self._nudge.set()

    # ------------------------------------------------------------ test API

    async def run_until(self, when: float | datetime) -> None:
        """Run the scheduler to ``when`` (epoch s or datetime) as fast as possible, the clock following
        each event; the clock is paused meanwhile and its speed restored after."""
        clock = self.clock
        speed = clock.speed
        clock.set_speed(0)
        try:
            await self.scheduler.advance_to(clock.now())
            await self.scheduler.advance_to(to_epoch(when), follow=clock.set_time)
            clock.set_time(max(to_epoch(when), clock.now()))
        finally:
            clock.set_speed(speed)
        self.store.save(clock.now())

    async def advance(self, seconds: float) -> None:
        """``run_until(now + seconds)``."""
        await self.run_until(self.clock.now() + seconds)

    async def drop_connections(self) -> None:
        """Cut every client link at once (no ``ShutDown``), as a network failure would."""
        for s in list(self.sessions):
            s.abort()

    def cloud_out(self, night_date: str | None = None) -> None:
        """Cloud out a night (``YYYY-MM-DD`` of its evening; None = the current night, from now on)."""
        now = self.clock.now()
        if night_date is None:
            self.faults.cloudy[self.sky.night_date(now)] = now
        else:
            self.faults.cloudy[night_date] = None
        self._nudge.set()

    # ------------------------------------------------------------ background tasks

    async def _drive(self) -> None:
        cfg, clock, sched = self.config, self.clock, self.scheduler
        last_shot = 0.0
        while True:
            now = clock.now()
            nxt = await sched.advance_to(now) if clock.speed > 0 else sched.next_event()
            if (clock.speed > 0 and sched.active is None and sched.has_pending and nxt > clock.now()
                    and time.monotonic() - self._last_poke >= 1.0
                    and self.fast_forward_nights < cfg.max_fast_forward_nights):
                if self.sky.night_start(nxt) != self.sky.night_start(clock.now()):
                    self.fast_forward_nights += 1
                clock.set_time(nxt)  # fast-forward: nothing observable until then
                continue
            if sched.active is not None:
                self.fast_forward_nights = 0
            frame = sched.active.frame if sched.active else None
            wait = min(clock.real_seconds_until(nxt), 5.0)
            if frame is not None:
                wait = min(wait, cfg.shot_running_interval)
            self._nudge.clear()
            nudge = asyncio.ensure_future(self._nudge.wait())
            change = asyncio.ensure_future(clock.wait_change(wait))
            try:
                await asyncio.wait({nudge, change}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                # Also when stop() cancels this loop: a wait left pending on the Event would be
                # destroyed pending once the simulator is collected ("Task was destroyed…").
                nudge.cancel()
                change.cancel()
            frame = sched.active.frame if sched.active else None
            if frame is not None and time.monotonic() - last_shot >= cfg.shot_running_interval and clock.now() < frame.end:
                last_shot = time.monotonic()
                self.emit("ShotRunning", clock.now(), True, **sched.shot_running(clock.now()))

    async def _persist(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.config.persist_interval)
            if self.store.dirty or time.monotonic() - last > 10.0:
                last = time.monotonic()
                text = self.store.snapshot(self.clock.now())
                await asyncio.to_thread(self.store.write, text)

    async def _control(self) -> None:
        while True:
            await asyncio.sleep(self.config.control_interval)
            if any(s.dashboard for s in self.sessions):
                t = self.clock.now()
                mount = await asyncio.to_thread(self.mount.state, t, self.telemetry.tracked())
                self.emit("ControlData", t, True, **self.telemetry.control_data(t, mount))

    async def _weather(self) -> None:
        while True:
            await asyncio.sleep(self.config.weather_interval)
            if any(s.dashboard for s in self.sessions):
                self.emit("WeatherAndSafetyMonitorData", self.clock.now(), True, **self.telemetry.weather(self.clock.now()))

    async def _dropper(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.25)
            interval = self.faults.drop_interval
            if interval > 0 and time.monotonic() - last >= interval:
                last = time.monotonic()
                log.info("voyager_sim.fault_drop", clients=len(self.sessions))
                await self.drop_connections()
            elif interval <= 0:
                last = time.monotonic()
