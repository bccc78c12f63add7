"""The simulator's sky: the site ephemeris of ``core/ephemeris.py``, under the names the simulator uses.

The scheduler, the planner and the telemetry need sun, moon and target altitudes and hour angles
one night at a time (``Sky.night``, ``Sky.moon_alt``, ``Sky.target_alt``, ``Night.dark``,
``Night.hour_angle``) and the darkness threshold (``ASTRO_TWILIGHT``). They come from the one
ephemeris module that the API's feasibility check and the demo also use, so what the API promises
is what the simulated telescope images (docs/voyager-protocol.md §9: "computed with a real
ephemeris"; no network at run time).
"""

from __future__ import annotations

from core.ephemeris import ASTRO_TWILIGHT, DAY, Constraints, Night, Sky, airmass, observable_cells

__all__ = ["ASTRO_TWILIGHT", "DAY", "Constraints", "Night", "Sky", "airmass", "observable_cells"]
