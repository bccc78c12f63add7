"""Temporal payloads of the data-care workflows: frame retention and database backups.

Units: days are calendar days of 24 h; ``as_of`` and other datetimes are aware UTC; bytes are bytes.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

# --- retention (docs/operations.md §Retention) -----------------------------------------------------


class RetentionInput(BaseModel):
    """``RetentionWorkflow``'s input. ``days``/``notice_days`` empty = ``settings.retention``'s."""

    days: int | None = Field(default=None, ge=1)
    notice_days: int | None = Field(default=None, ge=0)


class RetentionScanInput(BaseModel):
    as_of: datetime
    days: int | None = None
    notice_days: int | None = None


class RetentionDue(BaseModel):
    """What a scan at ``as_of`` found (order ids): to notify, whose files to delete, and kept
    although due because their payment is in dispute; with the ``days``/``notice_days`` in force."""

    days: int
    notice_days: int
    notify: list[int] = Field(default_factory=list)
    delete: list[int] = Field(default_factory=list)
    held_in_dispute: list[int] = Field(default_factory=list)


class RetentionOrderInput(BaseModel):
    order_id: int
    as_of: datetime
    days: int
    notice_days: int


class RetentionNoticeResult(BaseModel):
    """``sent``: False when an earlier attempt already recorded it. ``delete_on``: UTC."""

    order_id: int
    sent: bool
    delete_on: datetime
    zip_url: str


class RetentionDeleteResult(BaseModel):
    """``frames``: frames expired by this call; ``files``/``bytes``: files removed from disk;
    ``skipped``: why nothing was deleted (``not_terminal``, ``in_dispute``, ``not_due``) or ''."""

    order_id: int
    frames: int = 0
    files: int = 0
    bytes: int = 0
    skipped: str = ""


class RetentionReport(BaseModel):
    as_of: datetime
    notified: list[int] = Field(default_factory=list)
    deleted: list[RetentionDeleteResult] = Field(default_factory=list)
    held_in_dispute: list[int] = Field(default_factory=list)


# --- backups (docs/operations.md §Backups) ---------------------------------------------------------


class BackupInput(BaseModel):
    """``BackupWorkflow``'s input. ``keep_days`` empty = ``settings.backup.keep_days``."""

    keep_days: int | None = Field(default=None, ge=1)


class BaseBackupDone(BaseModel):
    label: str
    restorable_from: datetime
    bytes: int


class PruneInput(BaseModel):
    keep_days: int | None = None


class PruneResult(BaseModel):
    deleted: int


class BackupReport(BaseModel):
    base: BaseBackupDone
    pruned: int
