"""French and English through gettext: catalogs in ``web/translations/<lang>/LC_MESSAGES/messages.po``.

The ``.po`` files are compiled in memory at start-up (Babel), so there is no build step and no
``.mo`` file to keep in sync. The reader's language: the session's choice (the switch in the page
header), else the best match of ``Accept-Language`` (RFC 9110 §12.5.4), else English.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

from babel.core import negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"
TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"


@lru_cache(maxsize=None)
def translations(lang: str) -> Translations:
    """The gettext catalog of ``lang`` (one of :data:`LANGUAGES`). Raises KeyError otherwise."""
    if lang not in LANGUAGES:
        raise KeyError(lang)
    with open(TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.po", "rb") as f:
        catalog = read_po(f, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


def parse_accept_language(header: str | None) -> list[str]:
    """Language tags of an ``Accept-Language`` header, best first (``q`` weights honoured)."""
    weighted: list[tuple[float, int, str]] = []
    for i, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        if not tag or tag == "*":
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if q > 0:
            weighted.append((-q, i, tag.replace("-", "_")))
    return [tag for _, _, tag in sorted(weighted)]


def choose_language(chosen: str | None, accept_language: str | None) -> str:
    """``chosen`` when it is one of ours, else the best ``Accept-Language`` match, else English."""
    if chosen in LANGUAGES:
        return chosen
    preferred = parse_accept_language(accept_language)
    # negotiate_locale matches "fr_CA" to "fr" only when asked for the bare language too.
    preferred += [p.split("_")[0] for p in preferred]
    return negotiate_locale(preferred, list(LANGUAGES), sep="_") or DEFAULT_LANGUAGE
