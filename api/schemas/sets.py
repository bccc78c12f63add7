"""HTTP bodies of ``/api/sets`` (customer Sets, Quasar; docs/sets.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, Field, model_validator

from api.schemas.common import MAX_ID, StrictIn

SetId = Annotated[int, Path(ge=1, le=MAX_ID, description="set id")]
SetName = Annotated[str, Field(min_length=1, max_length=100, description="shown in Voyager as the Set's name")]


class SetCreate(StrictIn):
    """``POST /api/sets``: a new Set, enabled unless ``paused``."""

    name: SetName
    paused: bool = False


class SetPatch(StrictIn):
    """``PATCH /api/sets/{id}``: rename (``name``), pause (``paused`` true) or resume (false).
    Omitted fields stay as they are; at least one is needed."""

    name: SetName | None = None
    paused: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> "SetPatch":
        if self.name is None and self.paused is None:
            raise ValueError("give name and/or paused")
        return self


class SetOut(BaseModel):
    """A customer Set. ``guid``/``tag``: the RoboTarget Set's (tag ``user_<customer id>``);
    ``is_default``: where orders without ``set_id`` go (it cannot be deleted); ``paused``: Voyager
    starts no session on its targets (their orders wait, their deadlines still run);
    ``open_orders``: orders in it not yet ended (a Set with any cannot be deleted);
    ``voyager_synced``: Voyager holds the Set as shown (false for a moment after a change, or while
    the observatory link is down)."""

    id: int
    name: str
    guid: str
    tag: str
    is_default: bool
    paused: bool
    open_orders: int
    voyager_synced: bool
    created_at: datetime
    updated_at: datetime


class SetList(BaseModel):
    """``GET /api/sets``: the default Set first, then the others by creation."""

    items: list[SetOut]
