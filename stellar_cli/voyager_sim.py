"""``stellar voyager-sim``: run the Voyager simulator (voyager/simulator) until Ctrl-C or SIGTERM.

Raw TCP and WebSocket (``ws://host:port/``) share the port, as on a real Voyager.

Every option defaults from ``get_settings().voyager`` (``STELLAR_VOYAGER__*``) and the site from
``settings.site``. Authentication is on when a username is given. On Ctrl-C/SIGTERM every client
gets ``ShutDown`` and the state file is saved.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import typer


def voyager_sim(
    host: str | None = typer.Option(None, help="address to listen on [settings: voyager.host or 127.0.0.1]"),
    port: int | None = typer.Option(None, help="TCP port, 0 = any free one [voyager.port, 5950]"),
    username: str | None = typer.Option(None, help="enables authentication [voyager.username]"),
    password: str | None = typer.Option(None, help="[voyager.password]"),
    mac_key: str | None = typer.Option(None, "--mac-key", help="RoboTarget MACKey [voyager.mac_key]"),
    mac_words: str | None = typer.Option(None, "--mac-words", help="W1,W2,W3,W4 [voyager.mac_words]"),
    speed: float | None = typer.Option(None, help="simulated seconds per real second [voyager.sim_speed]"),
    state_file: Path | None = typer.Option(None, "--state-file", help="JSON state file [voyager.sim_state_file]"),
    fit_dir: Path | None = typer.Option(None, "--fit-dir", help="where FITS/JPG frames go [voyager.sim_fit_dir]"),
    start_time: str | None = typer.Option(None, "--start-time", help="ISO UTC start of a fresh clock [voyager.sim_start_time]"),
    seed: int | None = typer.Option(None, help="seed of frame quality and clouds [voyager.sim_seed]"),
    seeing: float | None = typer.Option(None, help="median seeing, arcsec [voyager.sim_seeing_arcsec]"),
    cloud_probability: float | None = typer.Option(None, "--cloud-probability", help="chance a night clouds out"),
    pixel_scale: float | None = typer.Option(None, "--pixel-scale", help="arcsec per pixel of the frames [1.1; ~9 shows all of M45]"),
) -> None:
    """Run the Voyager Application Server simulator (RoboTarget, simulated sky) until Ctrl-C.

    WebSocket and raw TCP on the same port, as Voyager: ws://HOST:PORT/ (HTTP Upgrade, one JSON object per text frame)
    or raw TCP (one JSON object per CR LF line), with the same session: Version, authentication, keep-alive, events.
    Dashboard events: ControlData, WeatherAndSafetyMonitorData, LogEvent (after RemoteSetLogEvent); see docs/voyager-protocol.md.
    Frames show the real sky (Hipparcos stars, OpenNGC shapes) with a TAN WCS in each FITS header.
    """
    from core.settings import get_settings
    from voyager.simulator import SimulatorConfig, VoyagerSimulator
    from voyager.simulator.config import parse_time

    words = None
    if mac_words is not None:
        words = [w.strip() for w in mac_words.split(",")]
        if len(words) != 4:
            raise typer.BadParameter("must be exactly four comma-separated words", param_hint="--mac-words")
    cfg = SimulatorConfig.from_settings(
        get_settings(), host=host, port=port, password=password, mac_key=mac_key, mac_words=words, speed=speed,
        state_file=state_file, fit_dir=fit_dir, start_time=parse_time(start_time), seed=seed,
        seeing_arcsec=seeing, cloud_probability=cloud_probability, pixel_scale=pixel_scale,
    )
    if username is not None:
        cfg.username = username or None

    async def main() -> None:
        sim = VoyagerSimulator(cfg)
        try:
            await sim.start()
        except (OSError, ValueError) as exc:  # port in use, unreadable state file
            typer.echo(f"stellar voyager-sim: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"Voyager simulator on {cfg.host}:{sim.port} (speed {cfg.speed:g}x, "
                   f"auth {'on' if cfg.auth_enabled else 'off'}, clock {sim.clock.now_dt():%Y-%m-%d %H:%M} UTC); Ctrl-C stops")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await sim.stop()

    asyncio.run(main())
