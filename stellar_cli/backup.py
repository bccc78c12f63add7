"""``stellar backup`` and ``stellar restore``: PostgreSQL base backups, continuous WAL archiving and
point-in-time restore through the object store (``settings.storage``). docs/operations.md.

Exit codes: 0 done; 1 the backup or restore failed (store unreachable, a PostgreSQL tool failed);
2 bad input (``--to`` unparsable, in the future or before the oldest backup; a non-empty target).
"""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _settings():
    from stellar_cli.main import _settings as settings  # main imports this module: import when run

    return settings()


def parse_target(value: str) -> datetime | None:
    """``latest`` → None; an ISO 8601 moment (no zone = UTC) → aware UTC datetime.
    Raises ValueError for anything else."""
    if value.strip().lower() == "latest":
        return None
    moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def backup(
    follow: bool = typer.Option(False, "--follow",
                                help="keep archiving WAL (pg_receivewal) until Ctrl-C, after the base backup"),
    no_prune: bool = typer.Option(False, "--no-prune", help="keep backups older than backup.keep_days"),
) -> None:
    """Take a base backup of the database to the object store (and prune old ones); with
    --follow, stream WAL continuously so any moment can be restored."""
    from core.object_store import ObjectStoreError, open_store
    from core.pg_backup import BackupError, prune, take_base_backup
    from core.wal_archive import WalArchiver

    s = _settings()
    url = s.database.effective_url()
    archiver = None
    try:
        store = open_store(s.storage)
        if follow:
            # The slot exists before the base backup starts, so no WAL between the two is lost.
            archiver = WalArchiver(url, store, s.backup.spool_dir, interval=s.backup.wal_upload_interval)
            archiver.start()
        manifest = take_base_backup(url, store)
        out.print(f"base backup {manifest.label} in {store.description} (restorable from "
                  f"{manifest.restorable_from.isoformat()})")
        if not no_prune:
            deleted = prune(store, s.backup.keep_days)
            if deleted:
                out.print(f"pruned {len(deleted)} objects older than {s.backup.keep_days} days")
        if archiver:
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            out.print(f"archiving WAL every {s.backup.wal_upload_interval:g} s; Ctrl-C stops")
            archiver.run(stop)
    except (ObjectStoreError, BackupError) as exc:
        err.print(f"[red]backup FAILED: {exc}[/red]")
        raise typer.Exit(1) from None
    finally:
        if archiver:
            archiver.stop()


def restore(
    to: str = typer.Option(..., "--to", help="ISO 8601 UTC moment (2026-12-01T03:15:00Z) or 'latest'"),
    into: Path = typer.Option(..., "--into", help="a new or empty directory for the restored data"),
) -> None:
    """Restore the database as it was at --to into a new data directory (then start PostgreSQL
    on it: STELLAR_DATABASE__EMBEDDED_DATA_DIR=<into> stellar dev, or your own server)."""
    from core.object_store import ObjectStoreError, open_store
    from core.pg_restore import RestoreRefused, restore as run_restore

    s = _settings()
    try:
        target = parse_target(to)
    except ValueError:
        err.print(f"[red]--to {to!r} is neither 'latest' nor an ISO 8601 moment (2026-12-01T03:15:00Z)[/red]")
        raise typer.Exit(2) from None
    try:
        result = run_restore(open_store(s.storage), target, into)
    except RestoreRefused as exc:
        err.print(f"[red]restore refused: {exc}[/red]")
        raise typer.Exit(2) from None
    except (ObjectStoreError, RuntimeError) as exc:
        err.print(f"[red]restore FAILED: {exc}[/red]")
        raise typer.Exit(1) from None
    out.print(f"restored {'latest' if target is None else target.isoformat()} from base backup "
              f"{result.base.label} + {result.wal_files} WAL files into {result.data_dir} "
              f"in {result.seconds:.1f} s")
