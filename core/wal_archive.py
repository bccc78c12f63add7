"""Continuous WAL archiving: ``pg_receivewal`` streams WAL into a local spool through a
replication slot (so the server keeps every segment until it was received), and an upload pass
every ``interval`` seconds copies the spool to ``backups/wal/`` in the object store.

A finished segment is uploaded once, then removed from the spool (the newest is kept, from which
``pg_receivewal`` resumes). The segment being written (``*.partial``) is re-uploaded on every pass,
so at most ``interval`` seconds of committed writes are missing from the store: that is the RPO.
"""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path

import structlog

from core.backup_catalog import WAL_PREFIX
from core.object_store import ObjectStore, ObjectStoreError
from core.pg_backup import connection_args, pg_tool, run_tool
from core.processes import stop_process_group

log = structlog.get_logger(__name__)

SLOT = "stellar_backup"
_SEGMENT = re.compile(r"^[0-9A-F]{24}$")
_HISTORY = re.compile(r"^[0-9A-F]{8}\.history$")


class WalArchiver:
    """``start()`` the receiver, ``upload_once()`` (or ``run(stop)`` to loop), ``stop()``.

    ``spool``: a local directory for ``pg_receivewal``; ``interval``: seconds between uploads.
    Raises BackupError when the slot cannot be created, ObjectStoreError when an upload fails.
    """

    def __init__(self, database_url: str, store: ObjectStore, spool: Path, *, interval: float = 10.0,
                 slot: str = SLOT) -> None:
        self.database_url = database_url
        self.store = store
        self.spool = Path(spool)
        self.interval = interval
        self.slot = slot
        self._proc: subprocess.Popen | None = None
        self._uploaded: dict[str, tuple[int, int]] = {}

    def start(self) -> None:
        self.spool.mkdir(parents=True, exist_ok=True)
        conn, env = connection_args(self.database_url)
        tool = pg_tool("pg_receivewal")
        run_tool([tool, *conn, "--slot", self.slot, "--create-slot", "--if-not-exists"], env, timeout=60)
        # --synchronous: flush each WAL write to the spool at once, so an upload pass sees it.
        self._proc = subprocess.Popen([tool, *conn, "-D", str(self.spool), "--slot", self.slot, "--synchronous",
                                       "--status-interval", "1"],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      start_new_session=True)
        log.info("backup.wal_receiving", spool=str(self.spool), slot=self.slot)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def upload_once(self) -> int:
        """Upload what changed in the spool since the last pass; returns the number of files."""
        files = sorted(p for p in self.spool.iterdir() if p.is_file())
        done = [p for p in files if _SEGMENT.match(p.name) or _HISTORY.match(p.name)]
        count = 0
        for p in files:
            if not (p in done or p.name.endswith(".partial")):
                continue
            try:
                st = p.stat()
            except FileNotFoundError:
                continue  # a .partial renamed to its finished segment since the listing: next pass
            stamp = (st.st_size, st.st_mtime_ns)
            if self._uploaded.get(p.name) == stamp:
                continue
            try:
                self.store.put_file(WAL_PREFIX + p.name, p)
            except ObjectStoreError:
                if p.exists():
                    raise
                continue
            self._uploaded[p.name] = stamp
            count += 1
        segments = [p for p in done if _SEGMENT.match(p.name)]
        for p in segments[:-1]:
            if p.name in self._uploaded:
                p.unlink()  # in the store now; pg_receivewal resumes from the newest one kept
        return count

    def run(self, stop: threading.Event, *, final_pass: bool = True) -> None:
        """Upload every ``interval`` seconds until ``stop`` is set, then one last pass unless
        ``final_pass`` is False (the drill's lost disk). Raises BackupError when ``pg_receivewal`` exits."""
        from core.pg_backup import BackupError

        while not stop.wait(self.interval):
            if not self.alive():
                err = self._proc.stderr.read().decode(errors="replace") if self._proc and self._proc.stderr else ""
                raise BackupError(f"pg_receivewal exited: {err.strip()[-1000:]}")
            self.upload_once()
        if final_pass:
            self.upload_once()

    def stop(self) -> None:
        """Stop the receiver (the slot stays, so a restart loses nothing)."""
        stop_process_group(self._proc, timeout=10)
        self._proc = None

    def drop_slot(self) -> None:
        """Drop the replication slot (when archiving is given up for good: a forgotten slot makes
        the server keep WAL forever)."""
        conn, env = connection_args(self.database_url)
        run_tool([pg_tool("pg_receivewal"), *conn, "--slot", self.slot, "--drop-slot"], env, timeout=60)
