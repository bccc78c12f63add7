"""Sign up, sign in, sign out, the language switch and the account page (API keys)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated
from urllib.parse import urlparse

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import update
from sqlmodel import select

from api.deps import ResourcesDep, SessionDep
from api.errors import ApiError
from api.security import issue_key
from models.db import ApiKey
from web.accounts import check_password, sign_up, staff_role
from web.deps import CsrfDep, MeDep
from web.i18n import LANGUAGES
from web.security import start_session
from web.templating import render

router = APIRouter(prefix="/app")


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.get("/sign-up")
async def sign_up_page(request: Request):
    return render(request, "sign_up.html", errors={}, email="")


@router.post("/sign-up")
async def sign_up_submit(request: Request, session: SessionDep, _csrf: CsrfDep,
                         email: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
                         name: Annotated[str, Form()] = ""):
    try:
        customer = await sign_up(session, email, password, name)
    except ApiError as exc:
        return render(request, "sign_up.html", status_code=exc.status_code, errors=exc.fields or {"email": exc.message},
                      email=email)
    start_session(request, customer.id, customer.email)
    return see_other("/app/plans")


@router.get("/sign-in")
async def sign_in_page(request: Request):
    return render(request, "sign_in.html", error=None, email="")


@router.post("/sign-in")
async def sign_in_submit(request: Request, res: ResourcesDep, session: SessionDep, _csrf: CsrfDep,
                         email: Annotated[str, Form()] = "", password: Annotated[str, Form()] = ""):
    throttle = request.app.state.web_login_throttle
    who = email.strip().lower()
    wait = throttle.retry_after(who)
    if wait is not None:
        return render(request, "sign_in.html", status_code=429, error="too_many", wait=wait, email=email)
    customer = await check_password(session, who, password)
    if customer is None:
        throttle.failed(who)
        return render(request, "sign_in.html", status_code=401, error="wrong", email=email)
    throttle.succeeded(who)
    start_session(request, customer.id, customer.email)
    # Only shows the console's link; every console request checks the role again (web.deps).
    request.session["staff"] = await staff_role(session, customer.id) is not None
    return see_other("/app/orders")


@router.post("/sign-out")
async def sign_out(request: Request, _csrf: CsrfDep):
    lang = request.session.get("lang")
    request.session.clear()
    if lang:
        request.session["lang"] = lang
    return see_other("/app/sign-in")


@router.get("/lang/{lang}")
async def switch_language(request: Request, lang: str, next: str = "/app"):
    """Remember the reader's language; ``next`` must be a path of this site (no open redirect)."""
    if lang in LANGUAGES:
        request.session["lang"] = lang
    target = urlparse(next)
    return see_other(next if not target.scheme and not target.netloc and next.startswith("/") else "/app")


@router.get("/account")
async def account(request: Request, me: MeDep, session: SessionDep):
    keys = (await session.exec(select(ApiKey).where(ApiKey.customer_id == me.customer_id)
                               .order_by(ApiKey.id.desc()))).all()
    return render(request, "account.html", keys=keys, new_key=None)


@router.post("/account/keys")
async def create_key(request: Request, me: MeDep, session: SessionDep, _csrf: CsrfDep):
    """A new customer-role key, shown once on the page that answers this POST."""
    row, clear = await issue_key(session, me.customer_id, "customer")
    await session.commit()
    keys = (await session.exec(select(ApiKey).where(ApiKey.customer_id == me.customer_id)
                               .order_by(ApiKey.id.desc()))).all()
    return render(request, "account.html", keys=keys, new_key=clear)


@router.post("/account/keys/{key_id}/revoke")
async def revoke_key(key_id: int, me: MeDep, session: SessionDep, _csrf: CsrfDep):
    await session.exec(update(ApiKey).where(ApiKey.id == key_id, ApiKey.customer_id == me.customer_id,
                                            ApiKey.revoked_at.is_(None))
                       .values(revoked_at=datetime.now(timezone.utc)))
    await session.commit()
    return see_other("/app/account")
