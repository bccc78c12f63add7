"""``stellar telescope add|list|set|disable``: the network's telescopes (docs/telescopes.md).

Runs against the configured database, through the same service and validation as
``/api/admin/telescopes``. Exit 1 for a refused value (the reasons printed per field), 2 when the
settings or the database are unusable.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True, help="The network's telescopes: add, list, change, disable.")


def out() -> Console:
    """A console sized when the command runs (``COLUMNS`` then, not at import)."""
    return Console()


def err() -> Console:
    return Console(stderr=True)


def _filters(specs: list[str] | None) -> list[dict] | None:
    """``["L=0", "Ha=4"]`` → ``[{"name": "L", "index": 0}, …]``; a bare name takes its position."""
    if not specs:
        return None
    slots = []
    for position, spec in enumerate(specs):
        name, _, index = spec.partition("=")
        slots.append({"name": name.strip(), "index": int(index) if index.strip().isdigit() else position})
    return slots


async def _run(action):
    from core.database import make_engine, make_sessionmaker
    from core.settings import get_settings

    engine = make_engine(get_settings().database.effective_url(), pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session:
            return await action(session)
    finally:
        await engine.dispose()


def _call(action):
    """Run ``action(session)``; refusals and unusable settings become exit codes."""
    from pydantic import ValidationError

    from api.errors import ApiError, validation_fields
    from core.settings import SettingsError

    try:
        return asyncio.run(_run(action))
    except ValidationError as exc:
        for field, reason in validation_fields(exc.errors()).items():
            err().print(f"[red]{field}: {reason}[/red]")
        raise typer.Exit(1) from None
    except ApiError as exc:
        details = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
        err().print(f"[red]{exc.message}{' (' + details + ')' if details else ''}[/red]")
        raise typer.Exit(1) from None
    except SettingsError as exc:
        err().print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except (OSError, ConnectionError) as exc:
        err().print(f"[red]cannot reach the database: {exc}[/red]")
        raise typer.Exit(2) from None


def _show(rows) -> None:
    table = Table("slug", "name", "site", "lat", "lon", "field (deg)", "scale″/px", "filters", "×price", "status")
    for t in rows:
        fov = t.field_of_view
        table.add_row(t.slug, t.name, t.site.name, f"{t.site.latitude:.2f}", f"{t.site.longitude:.2f}",
                      f"{fov.width_deg:.2f}×{fov.height_deg:.2f}", f"{fov.scale_arcsec_px:.2f}",
                      " ".join(t.filters), str(t.price_multiplier), t.status)
    out().print(table)


# Typer options shared by add and set: name → (flag, help).
_OPTS = dict(
    name=typer.Option(None, "--name"), site_name=typer.Option(None, "--site-name", help="e.g. Haute-Provence"),
    latitude=typer.Option(None, "--latitude", help="degrees, north +"),
    longitude=typer.Option(None, "--longitude", help="degrees, east +"),
    elevation=typer.Option(None, "--elevation", help="metres"),
    time_zone=typer.Option(None, "--time-zone", help="IANA name, e.g. Europe/Madrid"),
    horizon_alt=typer.Option(None, "--horizon", help="degrees: the site's floor"),
    aperture_mm=typer.Option(None, "--aperture", help="mm"), focal_length_mm=typer.Option(None, "--focal-length", help="mm"),
    sensor_width_px=typer.Option(None, "--sensor-width", help="px"),
    sensor_height_px=typer.Option(None, "--sensor-height", help="px"),
    pixel_size_um=typer.Option(None, "--pixel-size", help="µm"),
    filters=typer.Option(None, "--filter", help="NAME=VOYAGER_INDEX, repeated in wheel order"),
    voyager_profile=typer.Option(None, "--profile", help="Voyager profile, e.g. Stellar.v2y"),
    price_multiplier=typer.Option(None, "--multiplier", help="exact decimal, e.g. 1.25"),
    host_customer_id=typer.Option(None, "--host", help="customer id of the host"),
    host_share_percent=typer.Option(None, "--host-share", help="percent 0–100"),
)


def _body(**values) -> dict:
    values["filters"] = _filters(values.get("filters"))
    if values.get("price_multiplier") is not None:
        values["price_multiplier"] = Decimal(values["price_multiplier"])
    return {k: v for k, v in values.items() if v is not None}


@app.command()
def add(
    slug: str = typer.Argument(..., help="lowercase letters, digits, dashes"),
    name: Optional[str] = _OPTS["name"], site_name: Optional[str] = _OPTS["site_name"],
    latitude: Optional[float] = _OPTS["latitude"], longitude: Optional[float] = _OPTS["longitude"],
    elevation: Optional[float] = _OPTS["elevation"], time_zone: Optional[str] = _OPTS["time_zone"],
    horizon_alt: Optional[float] = _OPTS["horizon_alt"], aperture_mm: Optional[float] = _OPTS["aperture_mm"],
    focal_length_mm: Optional[float] = _OPTS["focal_length_mm"],
    sensor_width_px: Optional[int] = _OPTS["sensor_width_px"], sensor_height_px: Optional[int] = _OPTS["sensor_height_px"],
    pixel_size_um: Optional[float] = _OPTS["pixel_size_um"], filters: Optional[list[str]] = _OPTS["filters"],
    voyager_profile: Optional[str] = _OPTS["voyager_profile"], price_multiplier: Optional[str] = _OPTS["price_multiplier"],
    host_customer_id: Optional[int] = _OPTS["host_customer_id"],
    host_share_percent: Optional[int] = _OPTS["host_share_percent"],
) -> None:
    """Add a telescope (online). Site, optics, filters and profile are required."""
    values = _body(**{k: v for k, v in locals().items() if k != "slug"})
    from api.schemas.telescopes import TelescopeIn
    from api.services import telescopes as service

    async def action(session):
        return await service.admin_view(await service.create(session, TelescopeIn(slug=slug, **values)))

    _show([_call(action)])


@app.command("list")
def list_() -> None:
    """Every telescope, retired too."""
    from api.services import telescopes as service

    async def action(session):
        return [await service.admin_view(t) for t in await service.all_telescopes(session)]

    _show(_call(action))


@app.command("set")
def set_(
    slug: str = typer.Argument(...),
    name: Optional[str] = _OPTS["name"], site_name: Optional[str] = _OPTS["site_name"],
    latitude: Optional[float] = _OPTS["latitude"], longitude: Optional[float] = _OPTS["longitude"],
    elevation: Optional[float] = _OPTS["elevation"], time_zone: Optional[str] = _OPTS["time_zone"],
    horizon_alt: Optional[float] = _OPTS["horizon_alt"], aperture_mm: Optional[float] = _OPTS["aperture_mm"],
    focal_length_mm: Optional[float] = _OPTS["focal_length_mm"],
    sensor_width_px: Optional[int] = _OPTS["sensor_width_px"], sensor_height_px: Optional[int] = _OPTS["sensor_height_px"],
    pixel_size_um: Optional[float] = _OPTS["pixel_size_um"], filters: Optional[list[str]] = _OPTS["filters"],
    voyager_profile: Optional[str] = _OPTS["voyager_profile"], price_multiplier: Optional[str] = _OPTS["price_multiplier"],
    host_customer_id: Optional[int] = _OPTS["host_customer_id"],
    host_share_percent: Optional[int] = _OPTS["host_share_percent"],
    status: Optional[str] = typer.Option(None, "--status", help="online | maintenance | retired"),
) -> None:
    """Change the given fields of a telescope; orders already placed keep it and their price."""
    values = _body(**{k: v for k, v in locals().items() if k != "slug"})
    from api.schemas.telescopes import TelescopeUpdate
    from api.services import telescopes as service

    async def action(session):
        return await service.admin_view(await service.update(session, slug, TelescopeUpdate(**values)))

    _show([_call(action)])


@app.command()
def disable(
    slug: str = typer.Argument(...),
    retire: bool = typer.Option(False, "--retire", help="retired for good instead of maintenance"),
) -> None:
    """Take a telescope out of assignment: maintenance (default) or retired."""
    from api.services import telescopes as service

    async def action(session):
        return await service.admin_view(await service.disable(session, slug, "retired" if retire else "maintenance"))

    _show([_call(action)])
