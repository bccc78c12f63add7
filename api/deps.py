"""``Annotated`` dependency aliases: settings, a database session per request, Temporal, the caller.

Routes declare what they need, e.g. ``async def f(session: SessionDep, me: CustomerDep)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, AsyncIterator

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Row
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from api.errors import Forbidden, RateLimited, Unauthorized
from api.resources import Resources
from api.security import Principal, authenticate_with, plausible_key
from api.services import order_context
from api.services.order_context import OrderContext
from api.services.orders import valid_idempotency_key
from core.database import RequestConnection
from core.settings import Settings

bearer_scheme = HTTPBearer(
    auto_error=False,
    bearerFormat="sk_…",
    description="API key: `Authorization: Bearer sk_...` (created by `stellar customers create` "
    "or `POST /api/admin/customers`, rotated by `POST /api/keys/rotate`).",
)


async def get_resources(request: Request) -> Resources:
    # async: FastAPI runs a plain function dependency in its thread pool, a thread hop per request.
    return request.app.state.resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_settings_dep(resources: ResourcesDep) -> Settings:
    return resources.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_session(resources: ResourcesDep) -> AsyncIterator[AsyncSession]:
    """One session per request; the route commits what it writes."""
    async with resources.sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_request_connection(resources: ResourcesDep) -> AsyncIterator[RequestConnection]:
    """The request's one connection (:class:`core.database.RequestConnection`), given back at the
    latest when the request ends: for routes whose authentication, rate-limit count and work share
    it (``POST /api/orders``: one pool checkout instead of three), in autocommit: every statement
    such a route sends commits itself."""
    held = RequestConnection(resources.engine, autocommit=True)
    try:
        yield held
    finally:
        await held.close()


RequestConnectionDep = Annotated[RequestConnection, Depends(get_request_connection)]


async def get_temporal(resources: ResourcesDep) -> Client:
    """Raises ServiceUnavailable (503) when Temporal cannot be reached."""
    return await resources.temporal.get()


TemporalDep = Annotated[Client, Depends(get_temporal)]


def client_ip(request: Request) -> str:
    """The peer address (behind a reverse proxy, run uvicorn with ``--proxy-headers`` and
    ``--forwarded-allow-ips`` so this is the client's, not the proxy's)."""
    return request.client.host if request.client else "unknown"


async def current_principal(
    request: Request,
    resources: ResourcesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """The caller of a ``Bearer sk_…`` key. 401 when missing/unknown/revoked; 429 (``Retry-After``)
    over the client IP's limits — checked first, in memory, so a flood of invalid keys costs no
    database query once over ``api.auth_failures_per_minute`` — or over the key's shared limit."""
    # One statement on a connection of its own: the key lookup and the shared per-key count.
    return (await _authenticate(request, resources, credentials, None))[0]


@dataclass(frozen=True)
class OrderCaller:
    """The caller of ``POST /api/orders`` and what the order needs of its rows, read with its key."""

    principal: Principal
    context: OrderContext


async def order_caller(
    request: Request,
    resources: ResourcesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    held: RequestConnectionDep,
) -> OrderCaller:
    """:func:`current_principal` on the request's own connection (``RequestConnection``), the same
    statement reading the order's context (api/services/order_context.py: plan, balances, the
    ``Idempotency-Key``'s order, telescope queues). The key lookup and count are committed on it in
    autocommit before the order is written there, so a request refused or failed later is still
    counted, and nothing else it wrote stays."""
    key = request.headers.get("idempotency-key")
    key = key if key is not None and valid_idempotency_key(key) else None
    principal, row = await _authenticate(request, resources, credentials, held, *order_context.params(key))
    return OrderCaller(principal, order_context.OrderContext.of(row, principal.customer_id, key))


async def _authenticate(request: Request, resources: Resources,
                        credentials: HTTPAuthorizationCredentials | None,
                        held: RequestConnection | None, extra=None, params=None) -> tuple[Principal, Row | None]:
    ip = client_ip(request)
    retry_after = resources.ip_limiter.check(ip) or resources.auth_failures.blocked(ip)
    if retry_after is not None:
        raise RateLimited(retry_after)
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing API key: send Authorization: Bearer sk_...")
    conn = await held.get() if held is not None and plausible_key(credentials.credentials) else None
    principal, retry_after, row = await authenticate_with(resources.rate_limiter, credentials.credentials, conn,
                                                      extra, params)
    if principal is None:
        resources.auth_failures.check(ip)
        raise Unauthorized("invalid or revoked API key", code="invalid_api_key")
    if retry_after is not None:
        raise RateLimited(retry_after)
    return principal, row


PrincipalDep = Annotated[Principal, Depends(current_principal)]
#: ``POST /api/orders``' caller and its order context, read on the request's one connection (:func:`order_caller`).
OrderCallerDep = Annotated[OrderCaller, Depends(order_caller)]


def require_role(role: str):
    """A dependency accepting callers whose role grants ``role`` (admin ⊇ support ⊇ customer)."""

    async def dependency(principal: PrincipalDep) -> Principal:
        if not principal.has_role(role):
            raise Forbidden(f"this operation needs the {role} role", code="forbidden")
        return principal

    return dependency


CustomerDep = PrincipalDep
SupportDep = Annotated[Principal, Depends(require_role("support"))]
AdminDep = Annotated[Principal, Depends(require_role("admin"))]
