"""The Jinja2 environment of the web app: templates, gettext (``jinja2.ext.i18n``), locale filters.

Rendering is synchronous, so installing the request's catalog just before rendering is safe on one
event loop (no other request renders in between).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from babel.dates import format_datetime
from babel.numbers import format_decimal
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from web.api_messages import translate_message, translate_status
from web.hfd_chart import render_hfd_svg
from web.i18n import translations
from web.security import csrf_token, current_language

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(["html"]),
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
)
env.globals["render_hfd_svg"] = render_hfd_svg


def _fmt_datetime(value: datetime | None, lang: str) -> str:
    if value is None:
        return "—"
    return format_datetime(value, "medium", tzinfo=None, locale=lang) + " UTC"


def _fmt_number(value: float | int | None, lang: str, digits: int = 2) -> str:
    if value is None:
        return "—"
    return format_decimal(round(value, digits), locale=lang)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` in the reader's language with the CSRF token and the signed-in customer."""
    lang = current_language(request)
    env.install_gettext_translations(translations(lang), newstyle=True)
    env.filters["dt"] = lambda v: _fmt_datetime(v, lang)
    env.filters["num"] = lambda v, digits=2: _fmt_number(v, lang, digits)
    gettext = translations(lang).gettext
    env.filters["api"] = lambda m: translate_message(m, gettext)
    env.filters["status"] = lambda s: translate_status(s, gettext)
    html = env.get_template(template).render(
        request=request, lang=lang, csrf=csrf_token(request), me_email=request.session.get("email"), **context)
    return HTMLResponse(html, status_code=status_code)
