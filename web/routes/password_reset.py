"""Forgotten password: ask for a link by e-mail, open it, choose a new password (web/password_reset.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request

from api.deps import ResourcesDep, SessionDep
from api.errors import ApiError
from web.deps import CsrfDep
from web.password_reset import ResetLinkInvalid, check_link, request_reset, reset_password
from web.routes.accounts import see_other
from web.security import current_language
from web.templating import render

router = APIRouter(prefix="/app")

#: The link is a secret: no Referer leaks it to another site, no cache keeps the page.
_PRIVATE = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def _private(response):
    response.headers.update(_PRIVATE)
    return response


@router.get("/password-reset")
async def request_page(request: Request):
    return render(request, "password_reset_request.html", email="", limited=False)


@router.post("/password-reset")
async def request_submit(request: Request, res: ResourcesDep, session: SessionDep, _csrf: CsrfDep,
                         email: Annotated[str, Form()] = ""):
    """The same page for every e-mail, known or not; 429 past the per-e-mail or per-IP limit."""
    state = request.app.state
    who = email.strip().lower()
    client = request.client.host if request.client else "?"
    if not state.web_reset_by_ip.allow(client) or not state.web_reset_by_email.allow(who):
        return render(request, "password_reset_request.html", status_code=429, email=email, limited=True)
    if "@" in who and len(who) <= 320:
        await request_reset(session, res.settings, state.web_secret, who, current_language(request))
    return render(request, "password_reset_sent.html", email=email,
                  minutes=res.settings.web.reset_link_max_age_seconds // 60)


@router.get("/password-reset/{token}")
async def choose_page(request: Request, token: str, res: ResourcesDep, session: SessionDep):
    max_age = res.settings.web.reset_link_max_age_seconds
    try:
        await check_link(session, request.app.state.web_secret, token, max_age)
    except ResetLinkInvalid:
        return _private(render(request, "password_reset_invalid.html", status_code=400))
    return _private(render(request, "password_reset_choose.html", token=token, errors={}))


@router.post("/password-reset/{token}")
async def choose_submit(request: Request, token: str, res: ResourcesDep, session: SessionDep, _csrf: CsrfDep,
                        password: Annotated[str, Form()] = ""):
    max_age = res.settings.web.reset_link_max_age_seconds
    try:
        customer = await reset_password(session, request.app.state.web_secret, token, max_age, password)
    except ResetLinkInvalid:
        return _private(render(request, "password_reset_invalid.html", status_code=400))
    except ApiError as exc:
        return _private(render(request, "password_reset_choose.html", status_code=exc.status_code, token=token,
                               errors=exc.fields or {"password": exc.message}))
    # A new password ends the sign-in lockout of that e-mail.
    request.app.state.web_login_throttle.succeeded(customer.email)
    return see_other("/app/sign-in?reset=done")
