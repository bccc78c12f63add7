"""Customers and keys. The clear ``api_key`` appears only in these answers, once."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.schemas.common import StrictIn


class CustomerCreate(StrictIn):
    email: str = Field(min_length=3, max_length=320, examples=["ada@example.com"])
    name: str = Field(default="", max_length=200)
    plan: str | None = Field(default=None, max_length=32, description="stardust | nebula | quasar: a manual plan")
    role: Literal["customer", "support", "admin"] = "customer"


class CustomerCreated(BaseModel):
    id: int
    email: str
    name: str
    role: str
    plan: str | None
    api_key: str = Field(description="the clear key, shown only here")
    key_prefix: str
    created_at: datetime


class KeyRotated(BaseModel):
    api_key: str = Field(description="the new clear key; the key used for this call is revoked")
    key_prefix: str
    role: str
    created_at: datetime
