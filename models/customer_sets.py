"""Customer Sets (docs/sets.md): the default Set's GUID and the payloads of ``CustomerSetWorkflow``.

Standard library and pydantic only: the order workflow derives a customer's default Set GUID
from here inside its sandbox, the API and the migration to the ``customer_set`` table too.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict

#: Namespace of the default Set GUIDs: one default Set per customer (tag ``user_<id>``) whatever
#: the number of concurrent orders, so its GUID is derived from the tag instead of drawn at random.
#: Never change it: Voyager and the ``customer_set`` rows hold GUIDs derived with it.
SET_NAMESPACE = uuid.UUID("6f1d3c52-3b0e-4c1e-9d6a-5b7f2e9a4c10")


def set_tag(customer_id: int) -> str:
    """The RoboTarget ``Tag`` of every Set of a customer: ``user_<id>``."""
    return f"user_{customer_id}"


def default_set_name(customer_id: int) -> str:
    """The name the default Set gets in Voyager until the customer renames it: ``User_<id>``."""
    return f"User_{customer_id}"


def default_set_guid(customer_id: int) -> str:
    """The customer's default Set GUID (uuid5 of the tag ``user_<id>``)."""
    return str(uuid.uuid5(SET_NAMESPACE, set_tag(customer_id)))


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SetSyncInput(_M):
    """``CustomerSetWorkflow`` and ``voyager.sync_set``: bring the Voyager Set of ``customer_set``
    row ``set_id`` to the row's current state (name, paused, deleted)."""

    set_id: int


class SetSyncResult(_M):
    """What ``voyager.sync_set`` did. ``action``: ``added`` | ``updated`` | ``removed`` |
    ``already_removed`` | ``up_to_date``; ``version``: the row version Voyager now holds."""

    set_id: int
    guid: str
    action: str
    version: int
    paused: bool


class SetSites(_M):
    """Where ``CustomerSetWorkflow`` carries a change (docs/network.md §2): ``site_queues`` — the
    ``site-<slug>`` queues of the telescopes the Set has orders on — in network mode; None in the
    single-telescope shape (the worker's own queue)."""

    site_queues: list[str] | None = None
