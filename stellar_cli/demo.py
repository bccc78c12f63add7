"""``stellar demo`` (``make demo``): real observation orders through the whole system.

Starts the embedded stack — by default the network of three simulated observatories (southern
Spain, New Mexico, Chile; each its own simulator and ``stellar site-worker`` process, the worker in
network mode: docs/network.md), with ``--single`` the one-telescope stack — or uses a running one
with ``--existing-stack``; subscribes a fresh
demo customer to Nebula through the real Stripe flow (localstripe, signed webhooks, credits granted
once), orders M42 — resolved from the catalogue — with L 10×60 s, R/G/B 5×120 s, Ha 10×300 s,
moon-down, priority 2, and follows it live over the API's Server-Sent Events until it is settled:
held → submitted → running → completed, each frame with its HFD and the moon's altitude at the
moment it was taken. On the network, M42 is ordered on ``spain`` and, at the same time, the
southern globular cluster NGC 5139 (Dec −47°) with ``telescope: any``, which only Chile can see:
both run at once, each on its site worker. Exits 0 when the orders completed and the ledger
invariants hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx
import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from core.frame_store import FRAMES_PREFIX, frame_store
from core.logging import configure_logging
from core.settings import Settings, get_settings

console = Console()

DEMO_ORDER = {
    "target_name": "M42",
    "priority": 2,
    "c_moon_down": True,
    "shots": [
        {"filter": "L", "exposure": 60, "quantity": 10},
        {"filter": "R", "exposure": 120, "quantity": 5},
        {"filter": "G", "exposure": 120, "quantity": 5},
        {"filter": "B", "exposure": 120, "quantity": 5},
        {"filter": "Ha", "exposure": 300, "quantity": 10},
    ],
}
FINAL = {"completed", "partial", "aborted", "expired", "failed", "rejected"}
#: The network demo's second order: a southern target only Chile can see, placed with ``any``.
SOUTHERN_ORDER = {
    "target_name": "NGC 5139", "ra_j2000": 13.4467, "dec_j2000": -47.479, "telescope": "any",
    "shots": [{"filter": "L", "exposure": 60, "quantity": 5}],
}
#: Where the network demo's followed order (M42) runs.
FOLLOWED_SITE = "spain"


class DemoFailed(RuntimeError):
    pass


def demo(
    existing_stack: bool = typer.Option(False, "--existing-stack", help="use a stack already started by `stellar dev`"),
    timeout: float = typer.Option(170.0, help="seconds the order may take before the demo gives up"),
    single: bool = typer.Option(False, "--single", help="one telescope (today's single-site stack) instead of the network of three"),
) -> None:
    """Run real orders end to end on the network of three simulated observatories (--single: one) and show them live."""
    from core.processes import StackError
    from core.stack import Stack

    settings = get_settings()
    configure_logging("WARNING", settings.log_json)  # the live display is the demo's output
    stack = None
    started = time.monotonic()
    try:
        if not existing_stack:
            console.rule("[bold]Starting the embedded stack")
            stack = Stack(settings, network=not single)
            stack.start()
            settings = _settings_for(settings, stack.env, network=not single)
            summary = Table(show_header=False, box=None)
            for k, v in stack.summary().items():
                summary.add_row(f"[cyan]{k}", v)
            console.print(summary)
        code = asyncio.run(_run(settings, timeout, network=not single))
    except (StackError, DemoFailed) as exc:
        console.print(f"[red]demo failed: {exc}[/red]")
        code = 1
    finally:
        if stack:
            stack.stop()
    console.print(f"wall time {time.monotonic() - started:.0f} s")
    raise typer.Exit(code)


def _settings_for(settings: Settings, env: dict[str, str], *, network: bool = False) -> Settings:
    """The demo process's settings pointed at the services the stack started; on the network, the
    sky and the telescope clock shown are those of the followed order's site (``spain``)."""
    from core.network_sites import NETWORK_SITES

    data = settings.model_dump()
    data["database"]["url"] = env["STELLAR_DATABASE__URL"]
    data["temporal"]["address"] = env["STELLAR_TEMPORAL__ADDRESS"]
    data["stripe"]["api_base"] = env["STELLAR_STRIPE__API_BASE"]
    data["voyager"]["host"] = env.get("STELLAR_VOYAGER__HOST", "127.0.0.1")
    if network:
        site = next(s for s in NETWORK_SITES if s.slug == FOLLOWED_SITE)
        data["voyager"]["port"] = settings.voyager.port + site.port_offset
        data["site"].update(name=site.site_name, latitude=site.latitude, longitude=site.longitude,
                            elevation=site.elevation, time_zone=site.time_zone)
    return Settings.model_validate(data)


async def _run(settings: Settings, timeout: float, *, network: bool = False) -> int:
    base = f"http://{settings.api.host}:{settings.api.port}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        await _wait_healthy(http)
        key, customer_id, email = await _create_customer(settings)
        http.headers["Authorization"] = f"Bearer {key}"
        console.rule("[bold]1. Subscribe to Nebula (Stripe, signed webhooks)")
        await _subscribe(http)
        console.rule("[bold]2. Order M42 (catalogue), moon-down, priority 2")
        estimate = (await http.post("/api/pricing/estimate", json={"target": {
            "priority": 2, "c_moon_down": True, "c_hfd_mean_limit": 0,
            "shots": [{k: s[k] for k in ("filter", "exposure", "quantity")} for s in DEMO_ORDER["shots"]]}})).json()
        est = estimate["estimation"]
        console.print(f"estimate: base {est['base_cost']} h × {est['multipliers']['total']} → "
                      f"[bold]{est['final_cost']} credits[/bold] (balance {est['user_balance']})")
        # Named: the single-telescope stack's worker drives its one Voyager whatever the order says,
        # so the order must say that telescope, even when the database also knows the network's.
        order = await _place(http, {**DEMO_ORDER, "telescope": FOLLOWED_SITE if network else settings.orders.telescope})
        console.print(f"order #{order['id']} for {order['target_name']} at RA {order['ra_j2000']:.3f} h, "
                      f"Dec {order['dec_j2000']:+.2f}° (resolved from the catalogue); workflow "
                      f"[bold]{order['workflow_id']}[/bold]")
        console.print(f"follow it live in the browser: {base}/app/orders/{order['id']}")
        southern = None
        if network:
            console.rule("[bold]2b. At the same time: NGC 5139 (Dec −47°), telescope any")
            southern = await _place(http, SOUTHERN_ORDER)
            console.print(f"order #{southern['id']} for {southern['target_name']} → telescope "
                          f"[bold]{southern.get('telescope')}[/bold]: {southern.get('assignment_reason', '')}")
            ui = settings.temporal.ui_url.rstrip("/")
            console.print(f"Temporal UI, one telescope's orders (search attribute Telescope): "
                          f"{ui}/namespaces/{settings.temporal.namespace}/workflows?query=Telescope%3D%22chile%22")
        console.rule("[bold]3. Live: the order as the telescope observes it")
        frames = await _follow(http, settings, order["id"], timeout,
                               also=[southern["id"]] if southern else [])
        moon_ok = _check_moon_down(frames)
        final = (await http.get(f"/api/orders/{order['id']}")).json()
        ok = await _report(http, settings, final, customer_id)
        if southern is not None:
            ok = await _await_other(http, southern["id"], timeout) and ok
        await _show_mail(settings, email)
        return 0 if ok and moon_ok else 1


async def _place(http: httpx.AsyncClient, body: dict) -> dict:
    r = await http.post("/api/orders", json=body, headers={"Idempotency-Key": f"demo-{uuid.uuid4()}"})
    if r.status_code != 201:
        raise DemoFailed(f"POST /api/orders answered {r.status_code}: {r.text}")
    return r.json()


async def _await_other(http: httpx.AsyncClient, order_id: int, timeout: float) -> bool:
    """Wait for the network demo's second order to settle; True when it completed."""
    deadline = time.monotonic() + timeout
    order = (await http.get(f"/api/orders/{order_id}")).json()
    while order["status"] not in FINAL and time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        order = (await http.get(f"/api/orders/{order_id}")).json()
    p = order.get("progress") or {}
    console.print(f"order #{order_id} {order['target_name']} on {order.get('telescope')}: [bold]{order['status']}[/bold] "
                  f"({p.get('shots_done', 0)}/{p.get('shots_total', 0)} frames, captured {order['credits']['captured']})")
    return order["status"] == "completed"


async def _show_mail(settings: Settings, email: str, seconds: float = 20) -> None:
    """Where the order's e-mail went: the file the stack's SMTP sink wrote (docs/mail.md), which
    the worker's sender delivers within ``mail.every_seconds``."""
    if settings.mail.host:
        console.print(f"e-mails go to the SMTP server {settings.mail.host}:{settings.mail.port}")
        return
    inbox = Path(settings.state_dir).resolve() / "mail"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (inbox / "new").is_dir():
            for path in sorted((inbox / "new").iterdir()):
                if f"To: {email}".encode() in path.read_bytes():
                    console.print(f"the order's e-mail (SMTP sink): {path}", soft_wrap=True)
                    console.print(f"every e-mail sent by this stack: {inbox / 'new'}", soft_wrap=True)
                    return
        await asyncio.sleep(0.5)
    console.print(f"[yellow]no e-mail for {email} in {inbox / 'new'} yet[/yellow]")


def _check_moon_down(frames: list[dict]) -> bool:
    """The order asked for moon-down: every frame must have been taken with the moon set."""
    moon_up = [f for f in frames if not f["moon"] < 0]
    if frames and not moon_up:
        console.print(f"moon-down held: all {len(frames)} frames taken with the moon below the horizon "
                      f"(highest {max(f['moon'] for f in frames):+.0f}°)")
        return True
    console.print(f"[red]moon-down violated: {len(moon_up)} of {len(frames)} frames with the moon up[/red]")
    return False


async def _wait_healthy(http: httpx.AsyncClient, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    last = ""
    while time.monotonic() < deadline:
        try:
            r = await http.get("/health/ready")
            if r.status_code == 200:
                checks = r.json()["checks"]
                voyagers = checks.pop("voyagers", {})  # per telescope, after the summary
                console.print("health: " + ", ".join(f"{k} {status}" for k, status in checks.items())
                              + "".join(f", voyager {slug} {status}" for slug, status in voyagers.items()))
                return
            last = r.text
        except httpx.HTTPError as exc:
            last = str(exc)
        await asyncio.sleep(0.5)
    raise DemoFailed(f"the API did not become healthy: {last}")


async def _create_customer(settings: Settings) -> tuple[str, int, str]:
    from api.services.customers import create_customer
    from web.accounts import set_password
    from core.database import make_engine, make_sessionmaker

    engine = make_engine(settings.database.effective_url(), 2)
    try:
        email = f"demo-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}@stellar.example"
        new = await create_customer(make_sessionmaker(engine), email=email, name="Demo Astronomer")
        password = secrets.token_urlsafe(12)  # the web app's sign-in for this demo customer
        async with make_sessionmaker(engine)() as session:
            await set_password(session, new.customer_id, password)
    finally:
        await engine.dispose()
    console.print(f"customer #{new.customer_id} {email}, API key {new.key_prefix}…")
    base = f"http://{settings.api.host}:{settings.api.port}"
    console.print(f"web app: [bold]{base}/app/sign-in[/bold]  e-mail {email}  password [bold]{password}[/bold]")
    return new.api_key, new.customer_id, email


async def _subscribe(http: httpx.AsyncClient) -> None:
    r = await http.post("/api/subscriptions/subscribe", json={"plan": "nebula", "payment_method_id": "pm_card_visa"})
    if r.status_code not in (200, 201):
        raise DemoFailed(f"subscribe answered {r.status_code}: {r.text}")
    sub = r.json()["subscription"]
    console.print(f"subscription {sub['plan']} {sub['status']}, period ends {sub['current_period_end']}")
    # The invoice webhooks arrive signed, about a second later; wait for them, then check that the
    # allowance was granted exactly once (subscribe path and webhooks share the invoice's key).
    deadline = time.monotonic() + 20
    grants: list[dict] = []
    while time.monotonic() < deadline:
        tx = (await http.get("/api/credits/transactions")).json()
        grants = [e for e in tx["items"] if e["kind"] == "grant"]
        if grants:
            break
        await asyncio.sleep(0.3)
    await asyncio.sleep(2.5)  # let localstripe's webhooks land too
    tx = (await http.get("/api/credits/transactions")).json()
    grants = [e for e in tx["items"] if e["kind"] == "grant"]
    credits = (await http.get("/api/credits")).json()
    console.print(f"credits granted: {[g['amount'] for g in grants]} "
                  f"({len(grants)} grant, ref {grants[0]['reference']['type'] + ' ' + grants[0]['reference']['id'] if grants else '-'}); "
                  f"available {credits['available']}")
    if len(grants) != 1 or credits["available"] != 60:
        raise DemoFailed(f"expected exactly one grant of 60 credits, got {grants}")


def _status_line(history: list[str]) -> str:
    return " → ".join(f"[bold]{s}[/bold]" if i == len(history) - 1 else s for i, s in enumerate(history))


async def _follow(http: httpx.AsyncClient, settings: Settings, order_id: int, timeout: float,
                  also: list[int] | None = None) -> list[dict]:
    """Show ``order_id`` live until it is final; ``also``: other orders shown by one status line
    each (the network demo's order running on another site at the same time)."""
    from core import ephemeris  # the simulator's own sky: what is shown is what it images by

    def sun_moon_altitude(when: datetime) -> tuple[float, float]:
        site = settings.site
        return ephemeris.sun_moon_altitude(when, latitude=site.latitude, longitude=site.longitude,
                                           elevation=site.elevation)

    history: list[str] = []
    frames: list[dict] = []
    progress: dict = {}
    sim_clock = {"t": None}
    deadline = time.monotonic() + timeout
    others: dict[int, str] = {}

    async def poll_others() -> None:
        while True:
            for other in also or []:
                with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                    o = (await http.get(f"/api/orders/{other}")).json()
                    p = o.get("progress") or {}
                    others[other] = (f"meanwhile order #{other} {o['target_name']} on [bold]{o.get('telescope')}[/bold]: "
                                     f"{o['status']} ({p.get('shots_done', 0)}/{p.get('shots_total', 0)} frames)")
            await asyncio.sleep(1.0)

    def render() -> Table:
        outer = Table.grid(padding=(0, 1))
        outer.add_row(f"status: {_status_line(history) or '…'}")
        for line in others.values():
            outer.add_row(line)
        if sim_clock["t"]:
            t = sim_clock["t"]
            sun, moon = sun_moon_altitude(t)
            state = "[green]down[/green]" if moon < 0 else "[yellow]up[/yellow]"
            waiting = ""
            if history and history[-1] in ("held", "submitted"):
                why = [w for w, bad in (("daylight", sun >= ephemeris.ASTRO_TWILIGHT), ("the moon is up", moon >= 0)) if bad]
                waiting = f" — waiting: {' and '.join(why)}" if why else " — waiting for M42 to climb"
            outer.add_row(f"telescope clock {t:%Y-%m-%d %H:%M} UTC at {settings.site.name}: "
                          f"sun {sun:+.0f}°, moon {moon:+.0f}° ({state}){waiting}")
        per = Table("filter", "done", "accepted", "integration", "mean HFD", box=None)
        for f in progress.get("per_filter", []):
            per.add_row(f["filter"], f"{f['done']}/{f['total']}", str(f["accepted"]),
                        f"{f['integration_seconds'] / 60:.0f} min",
                        f"{f['mean_hfd']:.2f}" if f.get("mean_hfd") else "-")
        outer.add_row(per)
        last = Table("taken (UTC)", "filter", "exp", "HFD px", "moon alt", "kept", box=None, title="latest frames")
        for fr in frames[-6:]:
            last.add_row(fr["taken"], fr["filter"], f"{fr['exposure']:.0f}s",
                         f"{fr['hfd']:.2f}" if fr["hfd"] is not None else "-", f"{fr['moon']:+.0f}°",
                         "yes" if fr["accepted"] else "[red]rejected[/red]")
        outer.add_row(last)
        return outer

    clock_task = asyncio.create_task(_watch_sim_clock(settings, sim_clock))
    others_task = asyncio.create_task(poll_others())
    last_id = 0
    fetched = 0.0
    try:
        with Live(render(), console=console, refresh_per_second=4) as live:
            while time.monotonic() < deadline:
                try:
                    async with http.stream("GET", f"/api/orders/{order_id}/events",
                                           headers={"Last-Event-ID": str(last_id), "Accept": "text/event-stream"},
                                           timeout=httpx.Timeout(30, read=60)) as resp:
                        async for event_id, kind, data in _sse(resp):
                            last_id = event_id or last_id
                            if kind == "status":
                                status = data.get("status", "")
                                if status and (not history or history[-1] != status):
                                    history.append(status)
                            elif kind == "progress":
                                fr = data.get("frame", {})
                                taken = datetime.fromisoformat(fr["taken_at"]) if fr.get("taken_at") else None
                                moon = sun_moon_altitude(taken)[1] if taken else float("nan")
                                frames.append({"taken": f"{taken:%m-%d %H:%M}" if taken else "-",
                                               "filter": fr.get("filter", ""), "exposure": fr.get("exposure", 0),
                                               "hfd": fr.get("hfd"), "accepted": fr.get("accepted"), "moon": moon})
                                if taken:
                                    sim_clock["t"] = taken
                            if time.monotonic() - fetched > 0.5 or kind == "status":
                                progress = (await http.get(f"/api/orders/{order_id}")).json()["progress"]
                                fetched = time.monotonic()
                            live.update(render())
                            if history and history[-1] in FINAL:
                                return frames
                except (httpx.ReadTimeout, httpx.RemoteProtocolError):
                    continue  # resume from Last-Event-ID
                order = (await http.get(f"/api/orders/{order_id}")).json()
                if order["status"] in FINAL:
                    return frames
            raise DemoFailed(f"order {order_id} not finished after {timeout:.0f} s (status {history[-1:]})")
    finally:
        clock_task.cancel()
        others_task.cancel()


async def _sse(resp: httpx.Response):
    """Parse a Server-Sent Events stream into (id, event, data) tuples."""
    event_id, kind, data = 0, "", []
    async for line in resp.aiter_lines():
        if line == "":
            if data:
                yield event_id, kind, json.loads("\n".join(data))
            kind, data = "", []
        elif line.startswith("id:"):
            event_id = int(line[3:].strip())
        elif line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


async def _watch_sim_clock(settings: Settings, clock: dict) -> None:
    """The telescope's clock, read from the Timestamp of Voyager's ControlData events."""
    from core.voyager_clients import event_stream_from_settings

    try:
        async with event_stream_from_settings(settings.voyager, names={"ControlData"}) as stream:
            async for ev in stream:
                if ev.timestamp:
                    clock["t"] = datetime.fromtimestamp(ev.timestamp, tz=timezone.utc)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the display simply lacks the clock line
        console.print(f"[yellow]telescope clock unavailable: {exc}[/yellow]")


async def _report(http: httpx.AsyncClient, settings: Settings, order: dict, customer_id: int) -> bool:
    from billing.ledger_check import check_invariants
    from core.database import make_engine

    console.rule(f"[bold]4. Order #{order['id']}: {order['status']}")
    c = order["credits"]
    console.print(f"credits: cost {c['cost']}, held {c['held']}, captured [bold]{c['captured']}[/bold], "
                  f"released {c['released']}")
    report = order.get("report") or {}
    table = Table("filter", "frames", "integration (min)", "mean HFD", title="per-filter report")
    for row in report.get("filters", report.get("per_filter", [])):
        table.add_row(str(row.get("filter")), str(row.get("frames")),
                      f"{row.get('integration_minutes', 0):.1f}",
                      f"{row['mean_hfd']:.2f}" if row.get("mean_hfd") else "-")
    console.print(table)
    store = frame_store(settings)
    stored = store.list(f"{FRAMES_PREFIX}/{order['id']}/")
    fits = report.get("fits_paths") or []
    console.print(f"image store:  {store.description}/{FRAMES_PREFIX}/{order['id']}/  "
                  f"({sum(o.key.endswith('.fits') for o in stored)} FITS, "
                  f"{sum(o.key.endswith('.jpg') for o in stored)} JPG; docs/frames.md)")
    console.print(f"FITS as Voyager wrote them: {Path(fits[0]).parent if fits else settings.images.fit_dir}  "
                  f"({len(fits)} accepted frames)")
    if order.get("workflow_url"):
        console.print(f"Temporal UI:  {order['workflow_url']}")
    balance = (await http.get("/api/credits")).json()
    console.print(f"balance now: {balance['available']} available, {balance['held']} held")
    engine = make_engine(settings.database.effective_url(), 2)
    try:
        violations = await check_invariants(engine, customer_id=customer_id)
    finally:
        await engine.dispose()
    console.print("ledger invariants: " + ("[green]hold[/green]" if not violations else f"[red]{violations}[/red]"))
    return order["status"] == "completed" and not violations
