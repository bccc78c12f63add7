"""Shared HTTP model pieces: strict input base, id and pagination parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict

#: PostgreSQL ``integer`` ids: anything larger could only be a 404, never a database error.
MAX_ID = 2_147_483_647

OrderId = Annotated[int, Path(ge=1, le=MAX_ID, description="order id")]
ImageId = Annotated[int, Path(ge=1, le=MAX_ID, description="image (shot done) id")]
CustomerId = Annotated[int, Path(ge=1, le=MAX_ID, description="customer id")]
Limit = Annotated[int, Query(ge=1, le=200, description="page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="items to skip")]


class StrictIn(BaseModel):
    """Request bodies: unknown fields, NaN and infinities are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)
