"""What a backup is in the object store: key layout, the manifest, listing and choosing.

Layout under ``backups/`` (docs/operations.md):

* ``backups/base/<label>/base.tar.gz``, ``pg_wal.tar.gz``, ``backup_manifest`` — one
  ``pg_basebackup -Ft -z -X stream`` run, with PostgreSQL's own manifest (checked by
  ``pg_verifybackup`` before upload);
* ``backups/base/<label>/manifest.json`` — :class:`BaseBackupManifest`, written last, so a base
  backup without it is incomplete and ignored;
* ``backups/wal/<segment>`` — WAL segments from ``pg_receivewal``; ``<segment>.partial`` is the
  segment being written, re-uploaded every ``backup.wal_upload_interval`` seconds (the RPO).
"""

from __future__ import annotations

import json
from datetime import datetime

from pydantic import BaseModel, Field

from core.object_store import ObjectStore

PREFIX = "backups"
BASE_PREFIX = f"{PREFIX}/base/"
WAL_PREFIX = f"{PREFIX}/wal/"
MANIFEST = "manifest.json"


class BackupFile(BaseModel):
    size: int = Field(description="bytes")
    sha256: str


class BaseBackupManifest(BaseModel):
    """One base backup. ``restorable_from``: the earliest moment (UTC) it can be restored to (its
    end: a backup is consistent only once the WAL written during it is replayed)."""

    label: str
    started_at: datetime
    restorable_from: datetime
    timeline: int
    start_lsn: str
    end_lsn: str
    pg_version: str
    files: dict[str, BackupFile]

    @property
    def start_segment(self) -> str:
        """WAL segment file name of ``start_lsn`` (16 MB segments, the default)."""
        return segment_name(self.timeline, self.start_lsn)


def segment_name(timeline: int, lsn: str, segment_bytes: int = 16 * 1024 * 1024) -> str:
    """PostgreSQL's WAL file name ``TTTTTTTTXXXXXXXXYYYYYYYY`` for ``lsn`` (``"0/2000028"``)."""
    hi, lo = (int(p, 16) for p in lsn.split("/"))
    pos = (hi << 32) | lo
    seg = pos // segment_bytes
    per_xlog = 0x100000000 // segment_bytes
    return f"{timeline:08X}{seg // per_xlog:08X}{seg % per_xlog:08X}"


def base_key(label: str, name: str) -> str:
    return f"{BASE_PREFIX}{label}/{name}"


def list_base_backups(store: ObjectStore) -> list[BaseBackupManifest]:
    """Complete base backups (those with a ``manifest.json``), oldest first. Raises ObjectStoreError."""
    out = []
    for obj in store.list(BASE_PREFIX):
        if obj.key.endswith("/" + MANIFEST):
            out.append(BaseBackupManifest.model_validate(json.loads(store.get_bytes(obj.key))))
    return sorted(out, key=lambda m: m.restorable_from)


def choose_base(bases: list[BaseBackupManifest], target: datetime | None) -> BaseBackupManifest | None:
    """The newest base backup restorable at ``target`` (None = latest), or None when none is."""
    usable = [b for b in bases if target is None or b.restorable_from <= target]
    return usable[-1] if usable else None
