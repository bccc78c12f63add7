"""``stellar``: the operators' command line (Typer). Sub-commands import their modules lazily."""

from __future__ import annotations

import signal
import sys
import time

import typer
from rich.console import Console
from rich.table import Table

from core.logging import configure_logging
from core.settings import SettingsError, get_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Stellar: robotic-telescope observing time.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema (Alembic).")
app.add_typer(db_app, name="db")
console = Console(stderr=True)


def _settings():
    try:
        return get_settings()
    except SettingsError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@app.callback()
def _main() -> None:
    s = _settings()
    configure_logging(s.log_level, s.log_json)


@app.command()
def dev(
    no_api: bool = typer.Option(False, "--no-api", help="do not start the API"),
    no_worker: bool = typer.Option(False, "--no-worker", help="do not start the worker"),
    network: bool = typer.Option(False, "--network", help="three simulated observatories, each with its site worker "
                                                          "(docs/network.md) instead of one telescope"),
) -> None:
    """Start the embedded stack on loopback and keep it running until Ctrl-C."""
    from core.processes import StackError
    from core.stack import Stack

    stack = Stack(_settings(), api=not no_api, worker=not no_worker, network=network)
    try:
        stack.start()
    except StackError as exc:
        console.print(f"[red]stellar dev: {exc}[/red]")
        raise typer.Exit(1) from None
    table = Table(title="Stellar embedded stack", show_header=False)
    for k, v in stack.summary().items():
        table.add_row(k, v)
    console.print(table)
    console.print("Ctrl-C stops everything.")
    stopping = False

    def _stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stopping:
            dead = [n for n, ok in stack.children_alive().items() if not ok]
            if dead:
                console.print(f"[red]stopped unexpectedly: {', '.join(dead)} (see {stack.logs})[/red]")
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
    console.print("stack stopped")


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply Alembic migrations to the configured database."""
    from core.migrate import upgrade

    upgrade(_settings().database.effective_url(), revision)
    console.print(f"database at {revision}")


@app.command()
def worker(
    role: str = typer.Option("all", "--role", help="all (default) | workflows (workflows and their local database "
                             "steps) | activities (every activity, no workflow): run one workflows and one activities "
                             "process on the same queue to size and scale them apart (docs/operations.md §5)"),
) -> None:
    """Run the Temporal worker (same as `python worker.py`). Exit 2: unsafe settings or unknown role."""
    import asyncio

    from worker import main as worker_main

    sys.exit(asyncio.run(worker_main(role)) or 0)


@app.command("site-worker")
def site_worker(
    telescope: str = typer.Option(..., "--telescope", help="slug of the telescope beside whose Voyager this runs"),
) -> None:
    """Run a telescope's site worker (network mode, docs/network.md): task queue site-<slug>, the
    only link to that Voyager (STELLAR_VOYAGER__* of this environment). Exit 2: unknown or retired slug."""
    import asyncio

    from site_worker import main as site_main

    sys.exit(asyncio.run(site_main(telescope)) or 0)


def _register_optional() -> None:
    """Sub-apps owned by other modules, registered when present."""
    import importlib

    for module, attr, name in [
        ("stellar_cli.voyager_sim", "voyager_sim", "voyager-sim"),
        ("stellar_cli.customers", "app", "customers"),
        ("stellar_cli.ledger", "app", "ledger"),
        ("stellar_cli.demo", "demo", "demo"),
        ("stellar_cli.backup", "backup", "backup"),
        ("stellar_cli.backup", "restore", "restore"),
        ("stellar_cli.repair", "repair", "repair"),
        ("stellar_cli.telescopes", "app", "telescope"),
        ("stellar_cli.host", "app", "host"),
    ]:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue
            raise
        obj = getattr(mod, attr)
        if isinstance(obj, typer.Typer):
            app.add_typer(obj, name=name)
        else:
            app.command(name)(obj)


_register_optional()
