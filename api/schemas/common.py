"""Shared HTTP model pieces: strict input base, id and pagination parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, field_validator

#: PostgreSQL ``integer`` ids: anything larger could only be a 404, never a database error.
MAX_ID = 2_147_483_647

OrderId = Annotated[int, Path(ge=1, le=MAX_ID, description="order id")]
ImageId = Annotated[int, Path(ge=1, le=MAX_ID, description="image (shot done) id")]
CustomerId = Annotated[int, Path(ge=1, le=MAX_ID, description="customer id")]
Limit = Annotated[int, Query(ge=1, le=200, description="page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="items to skip")]


def has_forbidden_characters(text: str) -> bool:
    """Control characters other than tab/newline/carriage return (NUL among them: PostgreSQL refuses
    it in text), DEL, and lone surrogates (not encodable as UTF-8)."""
    return any((ord(c) < 32 and c not in "\t\n\r") or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in text)


class StrictIn(BaseModel):
    """Request bodies: unknown fields, NaN and infinities, and text with control characters (see
    :func:`has_forbidden_characters`) are refused with a 422 naming the field."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, v):
        if isinstance(v, str) and has_forbidden_characters(v):
            raise ValueError("must not contain control characters")
        return v
