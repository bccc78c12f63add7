"""One error model for the whole API: ``{"error": {"code", "message", "fields"}}``.

``code`` is a stable snake_case identifier clients switch on, ``message`` is for humans, ``fields``
maps a request field (dotted path, e.g. ``shots.0.exposure``) to why it was refused.

One identifier per error from the domain to HTTP: a domain error's ``code`` (``billing.errors``)
is also the Temporal ``ApplicationError.type`` (``models.temporal_contract``) and the HTTP ``code``.
:data:`STATUS_BY_CODE` is the one code → status table for domain errors and workflow failures
alike; :func:`domain_error` builds the answer for a code. Statuses:

* 400 ``malformed_json``; 401 ``unauthorized`` / ``invalid_api_key``; 403 ``forbidden``,
  ``plan_violation`` (per-field reasons, from ``billing.errors.PlanViolation``) and
  ``dashboard_not_in_plan`` (the live stream and previews: api/services/dashboard.py) and
  ``sets_not_in_plan`` (customer Sets: api/services/sets.py);
* 402 ``insufficient_credits`` / ``credit_debt`` / ``card_declined``: we chose 402 Payment
  Required over 409 because the fix is the customer's to make (buy a pack, upgrade, another
  card), not a state conflict to retry;
* 404 ``not_found`` (also for another customer's order or image: existence is not leaked),
  ``unknown_customer``, ``hold_not_found``, ``order_not_found``, ``unknown_pack``, ``set_not_found``
  (an unknown, deleted or another customer's Set);
* 410 ``image_expired``: a frame's files were deleted after the retention period (with the date);
* 405, 409 ``conflict`` / ``order_not_abortable`` / ``email_taken`` / ``set_not_empty`` /
  ``set_is_default`` / ``set_name_taken`` and the refused subscription
  commands (``already_subscribed``, ``same_plan``, …), 413 ``payload_too_large``,
  415 ``unsupported_media_type``; 422 ``validation_error`` and the other refusals of a
  well-formed request (``unknown_plan``, ``unknown_target``, ``target_never_observable``,
  ``idempotency_key_mismatch``, ``idempotency_conflict``, ``payment_method_invalid``);
  429 ``rate_limited`` (``Retry-After``);
* 502 Stripe or Voyager unreachable or refusing (``stripe_unavailable``, ``stripe_rejected``,
  ``payment_unavailable``, ``voyager_refused``, and any workflow failure type not in the table);
* 503 ``service_unavailable`` / ``temporal_unavailable`` (Temporal's RPC errors) /
  ``workflow_unresponsive`` (no worker took an update in time) / ``image_store_unavailable``
  (the object store holding frames, docs/frames.md).

No input produces a 500: unexpected exceptions are logged and answered with ``internal_error``.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError

from billing.errors import (
    BillingError,
    CreditDebt,
    HoldNotFound,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
    PlanViolation,
    UnknownPlan,
)
from models import temporal_contract as contract

log = structlog.get_logger(__name__)


class ErrorDetail(BaseModel):
    code: str = Field(description="stable machine-readable error code, snake_case")
    message: str = Field(description="human-readable explanation")
    fields: dict[str, str] = Field(default_factory=dict, description="request field (dotted path) → reason")


class ErrorResponse(BaseModel):
    """The body of every 4xx/5xx answer."""

    error: ErrorDetail


class ApiError(Exception):
    """An error answered as the error model. Subclasses fix the status code and default code."""

    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        fields: dict[str, str] | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
        self.fields = dict(fields or {})
        self.headers = headers


class Unauthorized(ApiError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kw)


class Forbidden(ApiError):
    status_code = 403
    code = "forbidden"


class NotFound(ApiError):
    status_code = 404
    code = "not_found"


class Conflict(ApiError):
    status_code = 409
    code = "conflict"


class Gone(ApiError):
    """The resource existed and was deleted on purpose (a frame past its retention period)."""

    status_code = 410
    code = "gone"


class Unprocessable(ApiError):
    status_code = 422
    code = "validation_error"


class RateLimited(ApiError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"rate limit exceeded; retry in {retry_after} s", headers={"Retry-After": str(retry_after)}
        )


class ServiceUnavailable(ApiError):
    status_code = 503
    code = "service_unavailable"


#: Codes the API answers itself (no domain error class or workflow type behind them).
UNKNOWN_TARGET = "unknown_target"
TARGET_NEVER_OBSERVABLE = "target_never_observable"
IDEMPOTENCY_KEY_MISMATCH = "idempotency_key_mismatch"
TEMPORAL_UNAVAILABLE = "temporal_unavailable"
WORKFLOW_UNRESPONSIVE = "workflow_unresponsive"
IMAGE_STORE_UNAVAILABLE = "image_store_unavailable"
#: Customer Sets (api/services/sets.py): the plan has none (403, naming Quasar), the default Set
#: cannot be deleted, a Set with orders not yet ended cannot be deleted, a live name is taken (409).
SETS_NOT_IN_PLAN = "sets_not_in_plan"
SET_IS_DEFAULT = "set_is_default"
SET_NOT_EMPTY = "set_not_empty"
SET_NAME_TAKEN = "set_name_taken"
#: Telescopes (docs/telescopes.md): no such slug; not online; slug taken; no online telescope fits.
UNKNOWN_TELESCOPE = "unknown_telescope"
TELESCOPE_UNAVAILABLE = "telescope_unavailable"
TELESCOPE_EXISTS = "telescope_exists"
NO_TELESCOPE_FITS = "no_telescope_fits"
#: Host earnings (docs/host-earnings.md): host figures asked by a customer who hosts nothing (403);
#: a payout for a customer who hosts nothing, above the due balance, or by Stripe Connect when it is off (422).
HOST_ONLY = "host_only"
NOT_A_HOST = "not_a_host"
PAYOUT_EXCEEDS_DUE = "payout_exceeds_due"
PAYOUT_METHOD_UNAVAILABLE = "payout_method_unavailable"
IDEMPOTENCY_KEY_REQUIRED = "idempotency_key_required"

#: The one code → HTTP status table: domain errors (``billing.errors`` codes) and workflow failures
#: (``ApplicationError.type``, models/temporal_contract.py) share their identifiers.
STATUS_BY_CODE: dict[str, int] = {
    # credits and orders
    contract.ERR_INSUFFICIENT_CREDITS: 402,
    CreditDebt.code: 402,
    contract.ERR_PLAN_VIOLATION: 403,
    contract.ERR_UNKNOWN_CUSTOMER: 404,
    HoldNotFound.code: 404,
    contract.ERR_ORDER_NOT_FOUND: 404,
    contract.ERR_ABORT_REFUSED: 409,
    contract.ERR_SET_NOT_FOUND: 404,
    SETS_NOT_IN_PLAN: 403,
    SET_IS_DEFAULT: 409,
    SET_NOT_EMPTY: 409,
    SET_NAME_TAKEN: 409,
    contract.ERR_UNKNOWN_PLAN: 422,
    IdempotencyConflict.code: 422,
    InvalidAmount.code: 422,
    contract.ERR_INVALID_ORDER: 422,
    UNKNOWN_TARGET: 422,
    TARGET_NEVER_OBSERVABLE: 422,
    IDEMPOTENCY_KEY_MISMATCH: 422,
    UNKNOWN_TELESCOPE: 404,
    TELESCOPE_UNAVAILABLE: 409,
    TELESCOPE_EXISTS: 409,
    NO_TELESCOPE_FITS: 422,
    HOST_ONLY: 403,
    NOT_A_HOST: 422,
    PAYOUT_EXCEEDS_DUE: 422,
    PAYOUT_METHOD_UNAVAILABLE: 422,
    IDEMPOTENCY_KEY_REQUIRED: 422,
    contract.ERR_VOYAGER_REFUSED: 502,
    # payments and subscription commands
    contract.ERR_CARD_DECLINED: 402,
    contract.ERR_PAYMENT_METHOD_INVALID: 422,
    contract.ERR_ALREADY_SUBSCRIBED: 409,
    contract.ERR_NO_ACTIVE_SUBSCRIPTION: 409,
    contract.ERR_SAME_PLAN: 409,
    contract.ERR_CHANGE_PENDING: 409,
    contract.ERR_SUBSCRIPTION_ENDING: 409,
    contract.ERR_ALREADY_CANCELLED: 409,
    contract.ERR_STRIPE_NOT_FOUND: 502,
    contract.ERR_STRIPE_REJECTED: 502,
    contract.ERR_STRIPE_UNAVAILABLE: 502,
    contract.ERR_PAYMENT_ERROR: 502,
    contract.ERR_PAYMENT_UNAVAILABLE: 502,
    # the backends
    TEMPORAL_UNAVAILABLE: 503,
    WORKFLOW_UNRESPONSIVE: 503,
    IMAGE_STORE_UNAVAILABLE: 503,
}

_CLASS_BY_STATUS: dict[int, type[ApiError]] = {
    403: Forbidden, 404: NotFound, 409: Conflict, 422: Unprocessable, 503: ServiceUnavailable}


def domain_error(code: str, message: str, *, fields: dict[str, str] | None = None,
                 default_status: int = 502) -> ApiError:
    """The API error for ``code`` (a domain error's code or a workflow failure's type), with its
    status from :data:`STATUS_BY_CODE`; ``default_status`` for a code not in the table (502: a
    backend refused in a way the API does not know)."""
    status = STATUS_BY_CODE.get(code, default_status)
    return _CLASS_BY_STATUS.get(status, ApiError)(message, code=code, fields=fields, status_code=status)


def error_body(code: str, message: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": dict(fields or {})}}


def error_response(
    status: int, code: str, message: str, fields: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message, fields), status_code=status, headers=headers)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def _field_path(loc: tuple | list) -> str:
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or "body"


def validation_fields(errors: list[dict[str, Any]]) -> dict[str, str]:
    """pydantic/FastAPI error list → ``{"shots.0.exposure": "Input should be greater than 0"}``."""
    fields: dict[str, str] = {}
    for err in errors:
        key = _field_path(err.get("loc", ()))
        msg = str(err.get("msg", "invalid"))
        fields[key] = f"{fields[key]}; {msg}" if key in fields else msg
    return fields


async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status_code, exc.code, exc.message, exc.fields, exc.headers)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = next((e.get("ctx", {}).get("error") for e in errors if e.get("type") == "json_invalid"), None)
        return error_response(400, "malformed_json", f"request body is not valid JSON: {detail or 'decode error'}")
    return error_response(422, "validation_error", "request validation failed", validation_fields(errors))


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))


async def _billing_error(_: Request, exc: BillingError) -> JSONResponse:
    """A domain error: status from :data:`STATUS_BY_CODE` (409 for a billing code not in it)."""
    status = STATUS_BY_CODE.get(exc.code, 409)
    message, fields = str(exc), {}
    if isinstance(exc, PlanViolation):
        message, fields = "the plan does not allow this order", exc.fields
    elif isinstance(exc, InsufficientCredits):
        fields = {"credits": f"needs {exc.requested}, {exc.available} available (short by {exc.shortfall})"}
    elif isinstance(exc, UnknownPlan):
        fields = {"subscription_plan": str(exc)}
    elif isinstance(exc, IdempotencyConflict):
        fields = {"Idempotency-Key": exc.detail}
    elif isinstance(exc, InvalidAmount):
        fields = {"amount": str(exc)}
    elif exc.code == PAYOUT_EXCEEDS_DUE:
        fields = {"amount_cents": f"above the {getattr(exc, 'due_cents', 0)} cents due"}
    return error_response(status, exc.code, message, fields)


async def _temporal_error(request: Request, exc: Exception) -> JSONResponse:
    """Temporal unreachable, or no worker answered an update in time: the backend, not the input."""
    log.warning("api.temporal_error", path=request.url.path, error=str(exc), type=type(exc).__name__)
    if isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError):
        err = domain_error(WORKFLOW_UNRESPONSIVE, "the workflow did not answer in time; retry later")
    else:
        err = domain_error(TEMPORAL_UNAVAILABLE, f"Temporal is unavailable: {getattr(exc, 'message', exc)}")
    return error_response(err.status_code, err.code, err.message)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    log.warning("api.database_unavailable", path=request.url.path, error=str(exc), type=type(exc).__name__)
    return error_response(503, "database_unavailable", "the database is unavailable; retry later")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("api.unhandled_error", path=request.url.path, method=request.method)
    return error_response(500, "internal_error", "internal error; it has been logged")


def install_error_handlers(app: FastAPI) -> None:
    """Route every error, FastAPI's own included, through the one error model."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(BillingError, _billing_error)
    app.add_exception_handler(RPCError, _temporal_error)
    app.add_exception_handler(WorkflowUpdateRPCTimeoutOrCancelledError, _temporal_error)
    # Connection-level failures only (refused, dropped, pool exhausted); SQL errors stay 500s.
    for exc_type in (OperationalError, InterfaceError, SATimeoutError, ConnectionError, asyncpg.PostgresConnectionError,
                     asyncpg.InterfaceError):
        app.add_exception_handler(exc_type, _database_error)
    app.add_exception_handler(Exception, _unexpected)


def _resp(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


#: OpenAPI ``responses=`` entries, by status; routes pick the ones they can answer.
ERRORS: dict[int, dict[str, Any]] = {
    400: _resp("malformed JSON"),
    401: _resp("missing or invalid API key"),
    402: _resp("insufficient credits"),
    403: _resp("role or plan forbids it (plan_violation carries per-field reasons)"),
    404: _resp("not found, or not yours"),
    409: _resp("conflict with the current state"),
    410: _resp("deleted after its retention period (the message gives the date)"),
    413: _resp("request body too large"),
    415: _resp("request body is not application/json"),
    422: _resp("validation error (per-field reasons)"),
    429: _resp("rate limit exceeded; see Retry-After"),
    503: _resp("a backing service (database, Temporal, the image store) is unreachable"),
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=errors(404, 409)`` plus the ones every API route can answer."""
    base = {400, 401, 413, 415, 422, 429}
    return {c: ERRORS[c] for c in sorted(base | set(codes))}
