"""Pydantic models of the repair sweep (``RepairWorkflow``, ``stellar repair``;
docs/order-workflow.md, "Repair").

One model in (:class:`RepairInput`) and one out (:class:`RepairReport`) for the workflow and its
activity, the same report the command prints.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RepairInput(_M):
    """``dry_run``: find and report, change nothing."""

    dry_run: bool = False


class RepairItem(_M):
    """One drift found. ``workflow``: ``running`` | ``closed:<status>`` | ``missing`` (of
    ``order-<id>``); ``finding``: what is wrong; ``action``: what repair does about it (or would,
    in a dry run); ``done``: the action ran and succeeded; ``detail``: its result or error.
    Credits are integers."""

    order_id: int
    customer_id: int
    status: str = Field(description="the order's status when found")
    workflow: str
    finding: str
    action: str
    done: bool = False
    detail: str = ""
    credits_captured: int = 0
    credits_released: int = 0


class RepairReport(_M):
    """``checked``: orders looked at (non-terminal or holding credits, past the grace period);
    ``voyager``: ``ok`` or why targets could not be checked (they are checked on the next run)."""

    dry_run: bool
    checked: int = 0
    items: list[RepairItem] = Field(default_factory=list)
    voyager: str = "ok"

    @property
    def nothing_to_do(self) -> bool:
        return not self.items
