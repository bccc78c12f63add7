"""``stellar ledger``: check the credit ledger's invariants, show a customer's balances.

Runs against the configured database (``STELLAR_DATABASE__URL``, or the embedded server's URL when
it is empty — start it with ``stellar dev`` first).
"""

from __future__ import annotations

import asyncio
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True, help="Credit ledger: invariant check and balances.")
out = Console()
err = Console(stderr=True)


def _url() -> str:
    from core.settings import SettingsError, get_settings

    try:
        return get_settings().database.effective_url()
    except SettingsError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


async def _check(url: str, customer_id: int | None):
    from billing.host_check import check_host_earnings
    from billing.ledger_check import check_invariants
    from core.database import make_engine

    engine = make_engine(url, pool_size=1)
    try:
        found = await check_invariants(engine, customer_id)
        if customer_id is None:  # the host ledger spans customers: checked for the whole ledger
            found += await check_host_earnings(engine)
        return found
    finally:
        await engine.dispose()


@app.command()
def check(customer: Optional[int] = typer.Option(None, "--customer", "-c", help="only this customer id")) -> None:
    """Verify balance = Σ entries and held = Σ open holds (and hold resolutions), and, for the whole
    ledger, the host earnings (billing/host_check.py). Exit 1 on violation, 2 when the database
    cannot be reached."""
    url = _url()
    try:
        violations = asyncio.run(_check(url, customer))
    except (OSError, ConnectionError) as exc:
        err.print(f"[red]cannot reach the database: {exc}[/red]")
        raise typer.Exit(2) from None
    scope = f"customer {customer}" if customer is not None else "all accounts"
    if not violations:
        out.print(f"ledger OK ({scope})")
        return
    table = Table(title=f"ledger violations ({scope})")
    for col in ("check", "customer", "detail"):
        table.add_column(col)
    for v in violations:
        table.add_row(v.check, str(v.customer_id), v.detail)
    out.print(table)
    err.print(f"[red]{len(violations)} ledger invariant violation(s)[/red]")
    raise typer.Exit(1)


@app.command()
def balance(customer_id: int) -> None:
    """Show a customer's available (subscription + pack − debt) and held credits."""
    from billing.ledger import Ledger
    from core.database import make_engine

    async def run():
        engine = make_engine(_url(), pool_size=1)
        try:
            return await Ledger(engine).balances(customer_id)
        finally:
            await engine.dispose()

    b = asyncio.run(run())
    debt = f", debt {b.debt}" if b.debt else ""
    out.print(f"customer {b.customer_id}: available {b.available} (subscription {b.subscription}, "
              f"pack {b.pack}{debt}), held {b.held}")
