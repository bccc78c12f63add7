"""``stellar site-worker`` refuses a telescope it cannot serve: a clear message, exit code 2,
before any connection to Temporal or Voyager."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from core.database import make_sessionmaker
from models.db import Telescope

ROOT = Path(__file__).resolve().parents[2]


def _site_worker(slug: str, database_url: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STELLAR_")}
    # Temporal and Voyager addresses nobody listens on: a refusal must come before either is dialled.
    env.update({"STELLAR_DATABASE__URL": database_url, "STELLAR_TEMPORAL__ADDRESS": "127.0.0.1:9",
                "STELLAR_VOYAGER__HOST": "127.0.0.1", "STELLAR_VOYAGER__PORT": "9", "STELLAR_LOG_JSON": "true"})
    return subprocess.run([sys.executable, "-m", "stellar_cli", "site-worker", "--telescope", slug], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


def test_an_unknown_slug_exits_non_zero_naming_it_and_the_known_telescopes(database_url):
    slug = f"nowhere-{uuid.uuid4().hex[:6]}"
    done = _site_worker(slug, database_url)
    assert done.returncode == 2, done
    assert f"stellar site-worker: no telescope '{slug}'; telescopes: " in done.stderr
    assert "Traceback" not in done.stderr


async def test_a_retired_telescope_is_refused(database_url, engine):
    slug = f"gone-{uuid.uuid4().hex[:6]}"
    async with make_sessionmaker(engine)() as s:
        s.add(Telescope(slug=slug, name="Gone", site_name="Nowhere", latitude=0.0, longitude=0.0, elevation=0.0,
                        time_zone="UTC", horizon_alt=10.0, aperture_mm=100.0, focal_length_mm=500.0,
                        sensor_width_px=100, sensor_height_px=100, pixel_size_um=3.0, filters=[],
                        voyager_profile="P.v2y", status="retired"))
        await s.commit()
    done = _site_worker(slug, database_url)
    assert done.returncode == 2, done
    assert f"telescope '{slug}' is retired" in done.stderr
