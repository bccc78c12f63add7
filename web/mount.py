"""Mount the web app on the API's FastAPI app: pages under ``/app``, static files under
``/app/static``, the signed session cookie, and HTML answers for the web's errors."""

from __future__ import annotations

import secrets
from pathlib import Path

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from api.errors import ApiError
from core.settings import Settings
from web.password_reset import RequestLimiter
from web.routes import accounts, billing, host, orders, packs, password_reset, sets, support
from web.security import CsrfRefused, LoginThrottle, SignInRequired
from web.templating import render

log = structlog.get_logger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
SESSION_COOKIE = "stellar_session"
PREFIX = "/app"


def mount_web(app: FastAPI, settings: Settings) -> None:
    """Add the web app to ``app`` (call once, after the API's routers and error handlers)."""
    web = settings.web
    secret = web.session_secret.get_secret_value()
    if not secret:
        if settings.env == "prod":
            log.warning("web.session_secret_missing", detail="sessions end at every restart; set STELLAR_WEB__SESSION_SECRET")
        secret = secrets.token_urlsafe(32)
    # SessionMiddleware's cookie is HttpOnly; SameSite=Lax; Secure when https_only.
    app.add_middleware(SessionMiddleware, secret_key=secret, session_cookie=SESSION_COOKIE,
                       max_age=web.session_max_age_seconds, same_site="lax",
                       https_only=settings.env not in ("dev", "test"))
    app.state.web_login_throttle = LoginThrottle(web.login_max_failures, web.login_lockout_seconds)
    app.state.web_secret = secret  # also signs password-reset links (another salt)
    app.state.web_reset_by_email = RequestLimiter(web.reset_requests_per_hour, 3600)
    app.state.web_reset_by_ip = RequestLimiter(10 * web.reset_requests_per_hour, 3600)
    for router in (accounts.router, billing.router, orders.router, packs.router, password_reset.router,
                   sets.router, support.router, host.router):
        app.include_router(router, include_in_schema=False)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="web-static")

    api_error_handler = app.exception_handlers[ApiError]

    async def api_error(request: Request, exc: ApiError):
        # The API answers JSON; the web pages answer the same message as a page.
        if not request.url.path.startswith(PREFIX + "/"):
            return await api_error_handler(request, exc)
        return render(request, "error.html", status_code=exc.status_code, message=exc.message, code=exc.code)

    async def csrf_refused(request: Request, exc: CsrfRefused):
        return render(request, "error.html", status_code=403, code="csrf_refused",
                      message="This form has expired or did not come from this site. Reload the page and try again.")

    async def sign_in_required(request: Request, exc: SignInRequired):
        if request.headers.get("HX-Request"):
            return render(request, "error.html", status_code=401, code="sign_in_required", message="Please sign in.")
        return RedirectResponse(f"{PREFIX}/sign-in", status_code=303)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(CsrfRefused, csrf_refused)
    app.add_exception_handler(SignInRequired, sign_in_required)
