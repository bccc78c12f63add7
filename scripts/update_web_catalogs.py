"""Re-extract the web app's messages and rewrite its two gettext catalogs.

    .venv/bin/python scripts/update_web_catalogs.py

English is the source language (its catalog keeps every msgstr empty: gettext falls back to the
msgid). French translations live in ``web/translations/fr.txt`` as ``English|Français`` lines;
a message without one fails ``tests/web/test_i18n.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "web" / "translations"


def main() -> int:
    pot = TRANSLATIONS / "messages.pot"
    subprocess.run([str(Path(sys.executable).parent / "pybabel"), "extract", "-F", "web/babel.cfg", "-o", str(pot),
                    "--no-location", "--omit-header", "."], cwd=ROOT, check=True, capture_output=True)
    template = read_po(pot.open("rb"))
    french = dict(line.split("|", 1) for line in (TRANSLATIONS / "fr.txt").read_text("utf-8").splitlines() if line)
    for lang in ("en", "fr"):
        catalog = Catalog(locale=lang, project="Stellar web", charset="utf-8")
        for message in template:
            if message.id:
                catalog.add(message.id, french.get(message.id, "") if lang == "fr" else "", flags=message.flags)
        out = TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po"
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("wb") as f:
            write_po(f, catalog, omit_header=False, no_location=True, sort_output=True)
    missing = [m.id for m in template if m.id and m.id not in french]
    for m in missing:
        print(f"no French translation: {m!r}")
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
