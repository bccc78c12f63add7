"""RA/Dec typed by a person (web/coordinates.py): sexagesimal hours or degrees, astropy's parser."""

from __future__ import annotations

import pytest

from web.coordinates import parse_dec, parse_ra, parse_ra_dec

M42_RA = 5 + 35 / 60 + 17.3 / 3600


@pytest.mark.parametrize("text", ["05h35m17.3s", "5:35:17.3", "5 35 17.3", f"{M42_RA * 15}"])
def test_right_ascension_in_hours_or_degrees(text):
    assert parse_ra(text) == pytest.approx(M42_RA, abs=1e-9)


@pytest.mark.parametrize("text", ["-05d23m28s", "-5:23:28", "-5°23'28\"", "-5.391111111"])
def test_declination_sexagesimal_or_decimal(text):
    assert parse_dec(text) == pytest.approx(-(5 + 23 / 60 + 28 / 3600), abs=1e-6)


@pytest.mark.parametrize("ra, dec, field, words", [
    ("25h10m", "-5", "ra_j2000", "0–24 h"), ("400", "-5", "ra_j2000", "0–24 h"), ("M42", "-5", "ra_j2000", "not a right"),
    ("5h", "95", "dec_j2000", "between −90° and +90°"), ("5h", "north", "dec_j2000", "not a declination"),
    ("5h", "", "dec_j2000", "or neither"),
])
def test_errors_name_their_field(ra, dec, field, words):
    got_ra, got_dec, errors = parse_ra_dec(ra, dec)
    assert list(errors) == [field] and words in errors[field]


def test_both_empty_means_the_catalogue():
    assert parse_ra_dec(" ", "") == (None, None, {})
