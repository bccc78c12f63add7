"""A target added through the client is observed through a full simulated night (docs/voyager-protocol.md §9).

Everything goes over real sockets: the RoboTarget objects are added through the pool, the
simulator's scheduler runs the night on its clock, and the results (runs, sessions, shots done,
JPGs, FITS) are read back through the client. The frame times are checked against astropy directly.
"""

from __future__ import annotations

import io
import uuid
from datetime import timedelta
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import AltAz, EarthLocation, SkyCoord, get_sun
from astropy.io import fits
from astropy.time import Time
from PIL import Image

from core.voyager_clients import event_stream_from_settings, pool_from_settings
from tests.voyager.conftest import sim_settings
from tests.voyager.test_client_robotarget import EVENING, NEXT_MORNING, m42
from voyager import wire
from voyager.robotarget import RoboTarget
from voyager.types import SetSpec, ShotSpec


@pytest.mark.timeout(300)
async def test_target_is_observed_through_a_night_and_its_frames_read_back(sim_factory):
    sim = await sim_factory(speed=0, start_time=EVENING, frame_width=480, frame_height=360)
    settings = sim_settings(sim)
    profile = sim.config.profile_name
    async with pool_from_settings(settings, 3) as pool, event_stream_from_settings(settings, names={"NewJPGReady", "NewFITReady"}) as events:
        await events.wait_connected(10)
        rt = RoboTarget(pool)
        filters = await rt.get_filter_configuration()
        s = SetSpec(guid=str(uuid.uuid4()), name="Order night", profile_name=profile, tag="night")
        t = m42(s.guid, c_mask="BDE")
        shots = [
            ShotSpec(guid=str(uuid.uuid4()), target_guid=t.guid, filter_index=filters["L"], num=3, exposure=120, order=1),
            ShotSpec(guid=str(uuid.uuid4()), target_guid=t.guid, filter_index=filters["Ha"], num=2, exposure=300, order=2),
        ]
        assert await rt.ensure_set(s) and await rt.ensure_target(t)
        for shot in shots:
            assert await rt.ensure_shot(shot)

        await sim.run_until(NEXT_MORNING)

        # Shot lines report their progress.
        assert [x.done for x in await rt.get_shots(t.guid)] == [3, 2]
        # One run for the night, one finished session of our target.
        runs = await rt.get_run_list(profile, days=2)
        assert len(runs) >= 1 and all(r.start is not None for r in runs)
        sessions = await rt.get_sessions_for_target(t.guid, profile, days=2)
        assert len(sessions) == 1
        session = sessions[0]
        assert session.result == wire.SESSION_OK and session.progress == 100 and session.finished
        assert EVENING < session.start < session.end < NEXT_MORNING

        done = await rt.get_shots_done(session.guid)
        kept = [d for d in done if not d.is_deleted]
        assert len(kept) == 5
        assert sorted((d.filter_index, d.exposure) for d in kept) == sorted(
            [(filters["L"], 120.0)] * 3 + [(filters["Ha"], 300.0)] * 2)
        names = {v: k for k, v in filters.items()}
        for d in done:
            assert d.ref_guid_session == session.guid and d.ref_guid_shot in {x.guid for x in shots}
            assert 0 < d.hfd < 20 and d.star_index > 0 and d.min < d.mean < d.max
            assert session.start <= d.taken_at <= session.end
            # The preview and the FITS file really exist and describe this frame.
            jpg = await rt.get_shot_jpg(d.guid)
            assert Image.open(io.BytesIO(jpg)).format == "JPEG"
            with fits.open(Path(d.path) / d.filename) as hdul:
                header = hdul[0].header
                assert header["OBJECT"] == "M42" and header["EXPTIME"] == d.exposure
                assert header["FILTER"] == names[d.filter_index]
                assert hdul[0].data.shape == (360, 480)

        # Every frame was taken in astronomical night, above C_AltMin, inside the HA window.
        site = sim.config
        loc = EarthLocation(lat=site.latitude * u.deg, lon=site.longitude * u.deg, height=site.elevation * u.m)
        times = Time([d.taken_at for d in done] + [d.taken_at + timedelta(seconds=d.exposure) for d in done])
        frame = AltAz(obstime=times, location=loc)
        sun_alt = get_sun(times).transform_to(frame).alt.deg
        target = SkyCoord(ra=t.ra_j2000 * 15 * u.deg, dec=t.dec_j2000 * u.deg)
        alt = target.transform_to(frame).alt.deg
        ha = (times.sidereal_time("apparent", longitude=loc.lon).hour - t.ra_j2000 + 12) % 24 - 12
        assert np.all(sun_alt < -18), sun_alt
        assert np.all(alt >= t.alt_min - 0.5), alt
        assert np.all((ha >= t.ha_start - 0.05) & (ha <= t.ha_end + 0.05)), ha

        # The dashboard saw every frame as it was saved.
        seen = {"NewJPGReady": 0, "NewFITReady": 0}
        while sum(seen.values()) < 2 * len(done):
            event = await events.next(timeout=10)
            seen[event.name] += 1
        assert seen == {"NewJPGReady": len(done), "NewFITReady": len(done)}
