"""``stellar host``: telescope hosts' monthly statements (docs/host-earnings.md §4)."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console

app = typer.Typer(no_args_is_help=True, help="Telescope hosts: monthly statements.")
out = Console()
err = Console(stderr=True)


async def _statements(month: str) -> tuple[int, int]:
    from core.database import make_engine
    from core.settings import get_settings
    from mail.host_statements import enqueue_host_statements

    settings = get_settings()
    engine = make_engine(settings.database.effective_url(), pool_size=1)
    try:
        async with engine.begin() as conn:
            return await enqueue_host_statements(conn, settings, month)
    finally:
        await engine.dispose()


@app.callback()
def host() -> None:
    """Telescope hosts: monthly statements (a group, so ``stellar host statements`` keeps its name)."""


@app.command()
def statements(month: str = typer.Option(..., "--month", help="YYYY-MM (UTC)")) -> None:
    """Put one statement e-mail per host for MONTH in the outbox, once per host and month (a second
    run queues nothing). Exit 1 on a malformed month."""
    try:
        hosts, queued = asyncio.run(_statements(month))
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    out.print(f"{queued} statement(s) queued for {month} ({hosts} host(s); {hosts - queued} already queued)")
