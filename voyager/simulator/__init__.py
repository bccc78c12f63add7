"""The embedded Voyager Application Server with RoboTarget (docs/voyager-protocol.md §9).

Usage::

    sim = VoyagerSimulator(SimulatorConfig(port=0, username="u", password="p", mac_key="K",
                                           mac_words=["a", "b", "c", "d"], speed=0, state_file=path))
    await sim.start()          # sim.port is the bound port
    await sim.run_until(dawn)  # step the scheduler deterministically
    await sim.stop()           # ShutDown to clients, state saved

Command line: ``stellar voyager-sim`` (``stellar_cli/voyager_sim.py``).
"""

from voyager.simulator.config import FaultConfig, SimulatorConfig
from voyager.simulator.faults import Faults
from voyager.simulator.server import VoyagerSimulator

__all__ = ["FaultConfig", "Faults", "SimulatorConfig", "VoyagerSimulator"]
