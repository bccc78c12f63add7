"""What the API opens once per process (in the lifespan) and hands to requests via ``api/deps.py``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from api.errors import ServiceUnavailable
from api.event_hub import OrderEventHub
from api.rate_limits import SharedRateLimiter, StreamCap
from api.security import RateLimiter
from billing.ledger import Ledger
from core.settings import Settings
from core.temporal import connect_temporal

log = structlog.get_logger(__name__)


class TemporalHandle:
    """The Temporal client, connected at start-up or, if Temporal was down then, on first use.

    The API starts without Temporal (``/health`` then reports it); routes that need it answer 503.
    """

    def __init__(self, settings: Settings, client: Client | None = None, connect_timeout: float = 5.0) -> None:
        self._settings = settings
        self._client = client
        self._timeout = connect_timeout
        self._lock = asyncio.Lock()

    @property
    def client(self) -> Client | None:
        return self._client

    async def get(self) -> Client:
        """The client. Raises ServiceUnavailable when Temporal cannot be reached."""
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    async with asyncio.timeout(self._timeout):
                        self._client = await connect_temporal(self._settings)
                    log.info("temporal.connected", address=self._settings.temporal.effective_address())
                except Exception as exc:  # noqa: BLE001 - any connect failure means "unavailable"
                    raise ServiceUnavailable(
                        f"Temporal at {self._settings.temporal.effective_address()} is unreachable: {exc}",
                        code="temporal_unavailable",
                    ) from exc
        return self._client


@dataclass
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    temporal: TemporalHandle
    events: OrderEventHub
    rate_limiter: SharedRateLimiter
    ledger: Ledger
    ip_limiter: RateLimiter
    auth_failures: RateLimiter
    sse_streams: StreamCap
