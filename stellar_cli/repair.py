"""``stellar repair [--dry-run]``: run the repair sweep once (activities/repair.py) and print a table
of what it found and did — the same logic the ``order-repair`` Temporal Schedule runs every
``STELLAR_REPAIR__EVERY_MINUTES`` (docs/order-workflow.md, "Repair").

Runs against the configured database, Temporal and Voyager (``STELLAR_DATABASE__URL``,
``STELLAR_TEMPORAL__ADDRESS``, ``STELLAR_VOYAGER__*``). Exit codes: 0 nothing to do or everything
repaired; 1 some repair failed (the table says which; the next run retries it); 2 the database or
Temporal cannot be reached (nothing was changed).
"""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.table import Table

out = Console()
err = Console(stderr=True)


class Unreachable(Exception):
    """A service repair cannot do without (the database, Temporal)."""


async def _sweep(dry_run: bool):
    import sqlalchemy as sa

    from activities.repair import OrderRepair
    from core.database import make_engine
    from core.settings import get_settings
    from core.temporal import connect_temporal
    from core.voyager_clients import pool_from_settings
    from voyager.robotarget import RoboTarget

    settings = get_settings()
    engine = make_engine(settings.database.effective_url(), pool_size=2)
    pool = None
    try:
        try:
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except (OSError, sa.exc.SQLAlchemyError) as exc:
            raise Unreachable(f"cannot reach the database: {exc}") from None
        try:
            async with asyncio.timeout(15.0):
                client = await connect_temporal(settings)
        except (OSError, RuntimeError, asyncio.TimeoutError) as exc:
            raise Unreachable(f"cannot reach Temporal at {settings.temporal.effective_address()}: {exc}") from None
        rt = None
        try:
            pool = await pool_from_settings(settings.voyager).start(strict=True)
            rt = RoboTarget(pool)
        except Exception as exc:  # noqa: BLE001 - any failure to connect: the sweep runs without Voyager
            err.print(f"[yellow]Voyager unreachable ({exc}): targets are not checked or stopped this time[/yellow]")
            pool = None
        return await OrderRepair(engine, client, rt, settings).run(dry_run)
    finally:
        if pool is not None:
            await pool.close()
        await engine.dispose()


def repair(dry_run: bool = typer.Option(False, "--dry-run", help="report what would be repaired, change nothing")) -> None:
    """Find orders and credits that drifted (holds open on terminal orders, orders without a running
    workflow, orders stuck pending, targets still enabled for finished orders) and mend them."""
    from core.settings import SettingsError

    try:
        report = asyncio.run(_sweep(dry_run))
    except SettingsError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except Unreachable as exc:
        err.print(f"[red]stellar repair: {exc}; nothing was changed[/red]")
        raise typer.Exit(2) from None
    mode = " (dry run: nothing changed)" if dry_run else ""
    if report.nothing_to_do:
        out.print(f"nothing to repair: {report.checked} order(s) checked, Voyager {report.voyager}{mode}")
        return
    table = Table(title=f"repair{mode}: {len(report.items)} found among {report.checked} order(s) checked")
    for col in ("order", "customer", "status", "workflow", "found", "action", "result"):
        table.add_column(col)
    for i in report.items:
        result = ("would do" if dry_run else ("done" if i.done else "FAILED")) + (f": {i.detail}" if i.detail else "")
        table.add_row(str(i.order_id), str(i.customer_id), i.status, i.workflow, i.finding, i.action, result)
    out.print(table)
    out.print(f"Voyager: {report.voyager}")
    if not dry_run and not all(i.done for i in report.items):
        err.print("[red]some repairs failed; the next run retries them[/red]")
        raise typer.Exit(1)
