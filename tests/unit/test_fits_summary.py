"""The gallery's FITS header summary reads the first blocks of a stored file: its data is cut off
there, and the summary must neither fail nor warn about it (web/fits_summary.py)."""

from __future__ import annotations

import io
import warnings

import numpy as np
from astropy.io import fits

from web.fits_summary import HEADER_BYTES, _summary


def fits_bytes(width: int, height: int) -> bytes:
    hdu = fits.PrimaryHDU(np.zeros((height, width), dtype=np.uint16))
    hdu.header["OBJECT"] = "M42"
    hdu.header["EXPTIME"] = (60.0, "seconds")
    out = io.BytesIO()
    hdu.writeto(out)
    return out.getvalue()


def test_a_head_cut_inside_the_data_gives_the_summary_without_a_truncation_warning():
    whole = fits_bytes(200, 150)
    assert len(whole) > HEADER_BYTES  # the head read from the store ends inside the data
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # astropy's "File may have been truncated" would fail here
        summary = _summary(io.BytesIO(whole[:HEADER_BYTES]))
    assert summary["OBJECT"] == "M42" and summary["NAXIS1"] == "200" and summary["NAXIS2"] == "150"
    assert summary["EXPTIME"] == "60.0"


def test_a_local_file_gives_the_same_summary(tmp_path):
    path = tmp_path / "M42_L_60s_001.fit"
    path.write_bytes(fits_bytes(40, 30))
    assert _summary(path)["NAXIS1"] == "40"
