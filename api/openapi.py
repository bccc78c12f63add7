"""Finishing touches on the generated OpenAPI document, so each operation lists exactly the errors
it can answer: body errors (400/413/415) only on methods that carry one, 422 only where there is input,
401/429 only where a key is required, 503 everywhere (database or Temporal unreachable)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.errors import ERRORS

_BODY_ONLY = ("400", "413", "415")
_AUTH_ONLY = ("401", "429")
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
_ERROR_REF = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}


def finish(doc: dict[str, Any]) -> dict[str, Any]:
    for ops in doc.get("paths", {}).values():
        for method, op in ops.items():
            if method not in _METHODS:
                continue
            responses = op.setdefault("responses", {})
            if method in ("get", "head", "options"):  # the body guard only reads bodies of other methods
                for code in _BODY_ONLY:
                    responses.pop(code, None)
            if "requestBody" not in op and not op.get("parameters"):
                responses.pop("422", None)
            if not op.get("security"):
                for code in _AUTH_ONLY:
                    responses.pop(code, None)
            responses.setdefault("503", {"description": ERRORS[503]["description"], "content": _ERROR_REF})
    return doc


def install(app: FastAPI) -> None:
    """Replace ``app.openapi`` with the generated document passed through :func:`finish` (cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = finish(get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes,
                tags=app.openapi_tags, servers=app.servers))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
