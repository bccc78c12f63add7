"""The FastAPI application factory. ``uvicorn api.app:create_app --factory`` serves it.

Routers are registered from the visible ``ROUTERS`` list below: add yours there (one line).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

import structlog
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from api.errors import ServiceUnavailable, install_error_handlers
from api.event_hub import OrderEventHub, asyncpg_dsn
from api import openapi
from api.middleware import RequestGuardMiddleware
from api.resources import Resources, TemporalHandle
from api.routes import admin, credits, events, health, images, keys, orders, plans, pricing, support
from api.routes import credit_packs, payments, sets, stripe_webhook, subscriptions, telescopes
from api.routes import host
from api.rate_limits import SharedRateLimiter, StreamCap
from api.security import RateLimiter
from billing.ledger import Ledger
from core.database import make_engine, make_sessionmaker
from core.logging import configure_logging
from core.settings import Settings, check_production, get_settings
from web.mount import mount_web

log = structlog.get_logger(__name__)

ROUTERS = [
    health.router,
    plans.router,
    pricing.router,
    orders.router,
    events.router,
    sets.router,
    images.router,
    credits.router,
    support.router,
    admin.router,
    keys.router,
    subscriptions.router,
    credit_packs.router,
    payments.router,
    stripe_webhook.router,
    telescopes.router,
    host.router,
]

DESCRIPTION = """Observing time on robotic telescopes (Voyager RoboTarget).

Authenticate with `Authorization: Bearer sk_...`. Every error is
`{"error": {"code": "...", "message": "...", "fields": {...}}}`; see each operation's responses.
"""


def create_app(
    settings: Settings | None = None,
    *,
    engine: AsyncEngine | None = None,
    sessionmaker: async_sessionmaker[AsyncSession] | None = None,
    temporal_client: Client | None = None,
) -> FastAPI:
    """Build the API. Anything not injected is opened in the lifespan from ``settings``
    (default: ``get_settings()``, and then logging is configured too).

    ``engine``/``sessionmaker``: reuse the caller's database pool (tests); an injected engine is not
    disposed at shutdown. ``temporal_client``: reuse a connected client (tests); otherwise one is
    connected at start-up, or lazily on first use if Temporal is down then.

    Raises SettingsError (naming the variables) when a production configuration keeps a built-in
    development secret or lacks Voyager credentials (``core.settings.check_production``).
    """
    if settings is None:
        # The production path (``uvicorn --factory``): configure logging like every other process.
        settings = get_settings()
        configure_logging(settings.log_level, settings.log_json)
    check_production(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        eng = engine
        if eng is None and sessionmaker is not None:
            eng = sessionmaker.kw["bind"]
        owns_engine = eng is None
        if eng is None:
            eng = make_engine(settings.database.effective_url(), settings.database.pool_size, keep_overflow=True)
        temporal = TemporalHandle(settings, temporal_client)
        if temporal_client is None:
            try:
                await temporal.get()
            except ServiceUnavailable as exc:
                log.warning("temporal.unavailable_at_start", error=exc.message)
        hub = OrderEventHub(asyncpg_dsn(eng.url.render_as_string(hide_password=False)))
        app.state.resources = Resources(
            settings=settings,
            engine=eng,
            sessionmaker=sessionmaker or make_sessionmaker(eng),
            temporal=temporal,
            events=hub,
            rate_limiter=SharedRateLimiter(eng, settings.api.rate_limit_per_minute),
            ledger=Ledger(eng),
            ip_limiter=RateLimiter(settings.api.ip_rate_limit_per_minute),
            auth_failures=RateLimiter(settings.api.auth_failures_per_minute),
            sse_streams=StreamCap(settings.api.sse_streams_per_key),
        )
        log.info("api.started")
        try:
            yield
        finally:
            await hub.close()
            if owns_engine:
                await eng.dispose()
            log.info("api.stopped")

    app = FastAPI(title="Stellar API", version="1.0.0", description=DESCRIPTION, lifespan=lifespan)
    install_error_handlers(app)
    app.add_middleware(RequestGuardMiddleware, max_body_bytes=settings.api.max_body_bytes)
    for router in ROUTERS:
        app.include_router(router)
    openapi.install(app)
    mount_web(app, settings)  # the customer web app under /app
    return app

