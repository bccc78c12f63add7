"""Simulator configuration: one dataclass, built from settings or directly by tests.

Every timing of the session protocol defaults to docs/voyager-protocol.md §2 (5 s auth window, 5 s polling,
15 s idle cutoff); tests may shorten them. Times are real seconds unless named ``sim_``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from voyager import protocol

if TYPE_CHECKING:
    from core.settings import Settings


@dataclass
class FaultConfig:
    """Fault switches, also changeable at run time through ``VoyagerSimulator.faults``.

    ``reply_delay``: real seconds added before every reply and RemoteActionResult.
    ``swallow_methods``: methods whose reply and result are never sent ("*" = all but disconnect).
    ``error_methods``: methods answered with ActionResultInt 5 and ``ret = "ERROR : Simulated fault"``.
    ``cloudy_nights``: night dates (local date of the evening, ``YYYY-MM-DD``) that cloud out.
    ``drop_interval``: real seconds between forced drops of every connection (0 = never).
    """

    reply_delay: float = 0.0
    swallow_methods: set[str] = field(default_factory=set)
    error_methods: set[str] = field(default_factory=set)
    cloudy_nights: set[str] = field(default_factory=set)
    drop_interval: float = 0.0


@dataclass
class SimulatorConfig:
    """Everything the simulator needs. ``port`` 0 → a free port (read ``VoyagerSimulator.port``).

    ``username`` None → no authentication (§2.2). ``mac_words``: the four licence words (§5).
    ``speed``: simulated seconds per real second (0 = paused; drive it with ``run_until``).
    ``start_time``: aware UTC start of the simulated clock for a fresh state (None = now); a state
    file that already holds a clock wins, so a restart continues where it stopped.
    ``seeing_arcsec``: median FWHM seeing; ``pixel_scale``: arcsec/px; ``seed``: RNG seed of frame
    quality and clouds (None = random). ``frame_width``/``frame_height``: FITS and JPG size (px).
    """

    host: str = "127.0.0.1"
    port: int = protocol.DEFAULT_PORT
    username: str | None = None
    password: str = ""
    mac_key: str = ""
    mac_words: list[str] = field(default_factory=lambda: ["", "", "", ""])
    speed: float = 3600.0
    state_file: Path | None = None
    fit_dir: Path = Path(".stellar/fits")
    start_time: datetime | None = None
    seeing_arcsec: float = 2.2
    cloud_probability: float = 0.0
    seed: int | None = None
    latitude: float = 43.9308
    longitude: float = 5.7133
    elevation: float = 650.0
    host_name: str = "OBS-PC"
    inst: int = 1
    profile_name: str = "Stellar.v2y"
    filters: list[str] = field(default_factory=lambda: ["L", "R", "G", "B", "Ha", "OIII", "SII"])
    dragscripts: list[str] = field(default_factory=lambda: ["Start of night", "End of night", "Flats at dawn"])
    pixel_scale: float = 1.1
    frame_width: int = 800
    frame_height: int = 600
    jpg_quality: int = 90
    # Scheduler.
    shot_overhead: float = 30.0  # simulated seconds per frame on top of the exposure
    horizon_alt: float = 10.0  # degrees: no target is imaged below this, whatever its C_AltMin
    grid_step: float = 180.0  # simulated seconds between ephemeris samples (core.ephemeris.GRID_STEP, the API's grid)
    max_fast_forward_nights: int = 120  # nights skipped in a row without a session before the clock just runs
    # Session protocol (§2), real seconds.
    auth_window: float = protocol.AUTH_WINDOW
    poll_interval: float = protocol.POLL_INTERVAL
    idle_timeout: float = protocol.IDLE_TIMEOUT
    # Real seconds a new connection is given to send a WebSocket upgrade before it is taken for raw
    # TCP and gets its Version line (a WebSocket client sends its GET at once, a raw one waits).
    upgrade_wait: float = 0.25
    control_interval: float = 2.0
    weather_interval: float = 30.0
    shot_running_interval: float = 1.0
    persist_interval: float = 0.5
    faults: FaultConfig = field(default_factory=FaultConfig)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.username)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> SimulatorConfig:
        """Build from ``settings.voyager`` and ``settings.site``; ``overrides`` win (None = keep)."""
        v = settings.voyager
        start = _parse_time(v.sim_start_time)
        cfg = cls(
            host=v.effective_host(),
            port=v.port,
            username=v.username or None,
            password=v.password.get_secret_value(),
            mac_key=v.mac_key.get_secret_value(),
            mac_words=v.mac_word_list(),
            speed=v.sim_speed,
            state_file=v.sim_state_file,
            fit_dir=v.sim_fit_dir,
            start_time=start,
            seeing_arcsec=v.sim_seeing_arcsec,
            cloud_probability=v.sim_cloud_probability,
            seed=v.sim_seed,
            latitude=settings.site.latitude,
            longitude=settings.site.longitude,
            elevation=settings.site.elevation,
            horizon_alt=settings.site.horizon_alt,
            profile_name=v.profile_name,
            faults=FaultConfig(
                reply_delay=v.sim_fault_reply_delay,
                swallow_methods=_csv(v.sim_fault_swallow_methods),
                error_methods=_csv(v.sim_fault_error_methods),
                cloudy_nights=_csv(v.sim_fault_cloudy_nights),
                drop_interval=v.sim_fault_drop_interval,
            ),
        )
        for key, value in overrides.items():
            if value is not None:
                setattr(cfg, key, value)
        return cfg


def _csv(raw: str | None) -> set[str]:
    return {p.strip() for p in (raw or "").split(",") if p.strip()}


def _parse_time(raw: str | None) -> datetime | None:
    """ISO 8601 → aware UTC datetime (naive means UTC); empty → None."""
    if not raw:
        return None
    dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


parse_time = _parse_time
