"""Point-in-time restore from the object store into a new data directory.

``restore(store, target, into)``: picks the newest base backup restorable at ``target``, unpacks
it into ``<into>/pgdata`` (the layout ``core.embedded_postgres.EmbeddedPostgres(into, …)`` runs),
fetches the WAL after it into ``<into>/wal``, and lets PostgreSQL replay it
(``restore_command``, ``recovery_target_time``, ``recovery_target_action = promote``; PostgreSQL
docs, "Continuous Archiving and Point-in-Time Recovery"). The server is started once to finish
recovery and stopped cleanly: the directory is then an ordinary data directory.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from core.backup_catalog import WAL_PREFIX, BaseBackupManifest, base_key, choose_base, list_base_backups
from core.embedded_postgres import EmbeddedPostgres, EmbeddedPostgresError
from core.object_store import ObjectStore
from core.pg_backup import pg_tool
from core.processes import free_port

log = structlog.get_logger(__name__)

RECOVERY_MARK = "# stellar restore"


class RestoreRefused(ValueError):
    """Bad input: a non-empty target, a moment in the future or before the oldest backup, or no
    backup at all. The message says which and what is possible."""


@dataclass
class RestoreResult:
    """``base``: the base backup used; ``wal_files``: segments fetched; ``seconds``: wall time."""

    base: BaseBackupManifest
    wal_files: int
    seconds: float
    data_dir: Path


def check_target(bases: list[BaseBackupManifest], target: datetime | None, *, now: datetime | None = None) -> None:
    """Raises RestoreRefused when ``target`` (UTC; None = latest) cannot be restored."""
    if not bases:
        raise RestoreRefused("the backup store holds no complete base backup; run `stellar backup` first")
    if target is None:
        return
    now = now or datetime.now(UTC)
    if target > now:
        raise RestoreRefused(f"--to {target.isoformat()} is in the future (now is {now.isoformat()})")
    oldest = bases[0].restorable_from
    if target < oldest:
        raise RestoreRefused(f"--to {target.isoformat()} is before the oldest backup; the earliest restorable "
                             f"moment is {oldest.isoformat()}")


def check_empty(into: Path) -> None:
    if into.exists() and (not into.is_dir() or any(into.iterdir())):
        raise RestoreRefused(f"{into} is not an empty directory; restore refuses to write into it")


def _extract(archive: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="tar")  # our own backup: keep modes, refuse paths outside dest


def _fetch_wal(store: ObjectStore, base: BaseBackupManifest, wal_dir: Path) -> int:
    """Segments from the base backup's start on; the newest ``.partial`` stands in for the segment
    it will become when that one was not finished before the disk was lost."""
    wal_dir.mkdir(parents=True, exist_ok=True)
    objects = store.list(WAL_PREFIX)
    names = {o.key[len(WAL_PREFIX):] for o in objects}
    fetched = 0
    for name in sorted(names):
        if name.endswith(".history"):
            store.get_file(WAL_PREFIX + name, wal_dir / name)
            fetched += 1
            continue
        segment = name.removesuffix(".partial")
        if segment[:8] != base.start_segment[:8] or segment < base.start_segment:
            continue
        if name.endswith(".partial"):
            if segment in names:
                continue
        store.get_file(WAL_PREFIX + name, wal_dir / segment)
        fetched += 1
    return fetched


def _recovery_config(pgdata: Path, wal_dir: Path, target: datetime | None) -> None:
    lines = [RECOVERY_MARK, f"restore_command = 'cp \"{wal_dir}/%f\" \"%p\"'",
             "recovery_target_action = 'promote'"]
    if target is not None:
        lines.append(f"recovery_target_time = '{target.isoformat()}'")
    with open(pgdata / "postgresql.auto.conf", "a") as fh:
        fh.write("\n" + "\n".join(lines) + "\n")
    (pgdata / "recovery.signal").touch()


def _drop_recovery_config(pgdata: Path) -> None:
    conf = pgdata / "postgresql.auto.conf"
    text = conf.read_text()
    conf.write_text(text.split("\n" + RECOVERY_MARK)[0] + "\n")


def _wait_promoted(pg: EmbeddedPostgres, timeout: float) -> None:
    """Wait until the server left recovery (replayed to the target and promoted)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run([pg_tool("psql"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-At",
                              "-d", "postgres", "-c", "SELECT pg_is_in_recovery()"],
                             capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip() == "f":
            return
        time.sleep(0.2)
    raise RuntimeError(f"recovery did not finish within {timeout:g} s (see {pg.data_dir / 'postgres.log'})")


def restore(store: ObjectStore, target: datetime | None, into: Path, *, database: str = "stellar",
            recovery_timeout: float = 600.0) -> RestoreResult:
    """Restore to ``target`` (UTC; None = the latest WAL in the store) into the new directory
    ``into``. Raises RestoreRefused (bad input), ObjectStoreError (store unreachable),
    RuntimeError (recovery failed; PostgreSQL's log is in ``into``)."""
    started = time.monotonic()
    into = Path(into).resolve()
    check_empty(into)
    bases = list_base_backups(store)
    check_target(bases, target)
    base = choose_base(bases, target)
    into.mkdir(parents=True, exist_ok=True)
    download = into / "download"
    for name in base.files:
        store.get_file(base_key(base.label, name), download / name)
    pgdata = into / "pgdata"
    _extract(download / "base.tar.gz", pgdata)
    _extract(download / "pg_wal.tar.gz", pgdata / "pg_wal")
    for f in download.iterdir():
        f.unlink()
    download.rmdir()
    os.chmod(pgdata, 0o700)  # PostgreSQL refuses a group/world-readable data directory
    wal_files = _fetch_wal(store, base, into / "wal")
    _recovery_config(pgdata, into / "wal", target)
    pg = EmbeddedPostgres(into, free_port(), database=database)
    try:
        pg.start(timeout=recovery_timeout)
    except EmbeddedPostgresError as exc:
        if "before configured recovery target was reached" in str(exc):
            raise RuntimeError(f"the archived WAL ends before {target.isoformat() if target else 'latest'}: restore "
                               "to an earlier moment or to latest (the data directory is left for inspection)") from exc
        raise
    try:
        _wait_promoted(pg, recovery_timeout)
    finally:
        pg.stop()
    _drop_recovery_config(pgdata)
    seconds = time.monotonic() - started
    log.info("backup.restored", base=base.label, target=target.isoformat() if target else "latest",
             wal_files=wal_files, seconds=round(seconds, 1), data_dir=str(into))
    return RestoreResult(base=base, wal_files=wal_files, seconds=seconds, data_dir=into)
