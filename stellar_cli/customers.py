"""``stellar customers``: create a customer (or a staff member) and print its API key once.

Runs against the configured database (``STELLAR_DATABASE__URL``, or the embedded server's URL when
it is empty — start it with ``stellar dev`` first).
"""

from __future__ import annotations

import asyncio
import json
from typing import Optional

import typer
from rich.console import Console

app = typer.Typer(no_args_is_help=True, help="Customers and their API keys.")
out = Console()
err = Console(stderr=True)


async def _create(url: str, email: str, name: str, plan: str | None, role: str):
    from api.services.customers import create_customer
    from core.database import make_engine, make_sessionmaker

    engine = make_engine(url, pool_size=1)
    try:
        return await create_customer(make_sessionmaker(engine), email=email, name=name, plan=plan, role=role)
    finally:
        await engine.dispose()


@app.command()
def create(
    email: str = typer.Option(..., "--email", help="the customer's e-mail (unique)"),
    name: str = typer.Option("", "--name", help="display name"),
    plan: Optional[str] = typer.Option(None, "--plan", help="stardust | nebula | quasar (manual, no Stripe)"),
    role: str = typer.Option("customer", "--role", help="customer | support | admin"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object (for scripts)"),
) -> None:
    """Create a customer and print its API key. The key is shown only this once. Exit 1 when the
    e-mail is taken or a value is invalid, 2 when the settings or the database are unusable."""
    from api.errors import ApiError
    from core.settings import SettingsError, get_settings

    try:
        url = get_settings().database.effective_url()
    except SettingsError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    try:
        c = asyncio.run(_create(url, email, name, plan, role))
    except ApiError as exc:
        details = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
        err.print(f"[red]{exc.message}{' (' + details + ')' if details else ''}[/red]")
        raise typer.Exit(1) from None
    except (OSError, ConnectionError) as exc:
        err.print(f"[red]cannot reach the database: {exc}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps({"id": c.customer_id, "email": c.email, "role": c.role, "plan": c.plan,
                          "api_key": c.api_key}))
        return
    out.print(f"customer {c.customer_id} {c.email} role={c.role} plan={c.plan or '-'}")
    out.print(f"API key (shown once, store it now): [bold]{c.api_key}[/bold]")
