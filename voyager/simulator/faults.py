"""Fault switches of the simulator (docs/voyager-protocol.md §9: "fault injection that tests can switch on").

Held in one mutable object shared by the server (replies) and the scheduler (clouds, failing
sessions). Tests flip the attributes or call the helpers on ``VoyagerSimulator``; operators set
them through ``STELLAR_VOYAGER__SIM_FAULT_*`` (see ``SimulatorConfig.from_settings``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from voyager import protocol
from voyager.simulator.config import FaultConfig

ERROR_RET = "ERROR : Simulated fault"


@dataclass
class Faults:
    """Live fault state.

    ``reply_delay``: real seconds before each reply and each RemoteActionResult.
    ``swallow_methods``: method names whose reply and result are never sent ("*" = every method
    except ``disconnect``); ``swallow_next``: swallow that many further commands, whatever they are.
    ``error_methods``: method names ("*" = all with a result) answered ActionResultInt 5, ``Motivo``
    "Simulated fault" and ``ParamRet.ret`` = "ERROR : Simulated fault"; ``error_next``: as many next ones.
    ``cloudy``: night date (``YYYY-MM-DD``, evening) → cloud onset (epoch s, None = from dusk).
    ``fail_sessions``: running sessions end with result 3 (error) at their next frame.
    ``drop_interval``: real seconds between forced drops of every connection (0 = never).
    ``held_results``: method names whose command takes effect at once but whose RemoteActionResult
    waits until :meth:`release_results` (Voyager busy: the scheduler may already run what the
    command added while its caller still waits, e.g. a target started before the submit returned).
    """

    reply_delay: float = 0.0
    swallow_methods: set[str] = field(default_factory=set)
    swallow_next: int = 0
    error_methods: set[str] = field(default_factory=set)
    error_next: int = 0
    cloudy: dict[str, float | None] = field(default_factory=dict)
    fail_sessions: bool = False
    drop_interval: float = 0.0
    held_results: set[str] = field(default_factory=set)
    _released: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @classmethod
    def from_config(cls, cfg: FaultConfig) -> Faults:
        return cls(
            reply_delay=cfg.reply_delay,
            swallow_methods=set(cfg.swallow_methods),
            error_methods=set(cfg.error_methods),
            cloudy={d: None for d in cfg.cloudy_nights},
            drop_interval=cfg.drop_interval,
        )

    @property
    def quiet(self) -> bool:
        """No fault armed that touches a command's reply or result (delay, swallow, error, hold)."""
        return not (self.reply_delay > 0 or self.swallow_next or self.swallow_methods or self.error_next
                    or self.error_methods or self.held_results)

    def take_swallow(self, method: str) -> bool:
        """True when this command's reply and result must be dropped (consumes ``swallow_next``)."""
        if method == protocol.M_DISCONNECT:
            return False
        if self.swallow_next > 0:
            self.swallow_next -= 1
            return True
        return "*" in self.swallow_methods or method in self.swallow_methods

    def take_error(self, method: str) -> bool:
        """True when this command must finish with a simulated error (consumes ``error_next``)."""
        if method in protocol.NO_RESULT_METHODS:
            return False
        if self.error_next > 0:
            self.error_next -= 1
            return True
        return "*" in self.error_methods or method in self.error_methods

    async def hold_result(self, method: str) -> None:
        """Wait, when ``method``'s results are held, until :meth:`release_results`."""
        if method in self.held_results:
            await self._released.wait()

    def release_results(self) -> None:
        """Send the held results (and every later one) now; the methods are no longer held."""
        self.held_results.clear()
        self._released.set()
        self._released = asyncio.Event()

    def clear(self) -> None:
        """Switch every fault off."""
        self.reply_delay = 0.0
        self.swallow_methods.clear()
        self.swallow_next = 0
        self.error_methods.clear()
        self.error_next = 0
        self.cloudy.clear()
        self.fail_sessions = False
        self.drop_interval = 0.0
        self.release_results()
