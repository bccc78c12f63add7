"""The restore drill (``make drill`` → ``bench/drill.md``; a short run is part of ``make test``).

1. An embedded PostgreSQL at the migrations' head; a local S3-compatible store (moto_server);
   continuous WAL archiving (``core/wal_archive.py``) through a replication slot.
2. Populate: customers with API keys, pack payments and subscription grants, orders held and
   settled on the real ledger (``billing/ledger.py``). Then a base backup (``core/pg_backup.py``).
3. Keep writing for ``duration`` seconds: marker ``k`` is a new customer, a payment and its grant,
   an order ``marker-k`` and its hold, and the settlement of marker ``k-1``'s order; after each
   marker the state (accounts, orders, ledger entries, payments, customers) is snapshotted.
4. The disk is lost right after the last marker: the archiver is killed without a last upload.
5. ``stellar restore --to <between two markers>`` into a fresh directory, then an embedded
   PostgreSQL on it: ``stellar ledger check`` must pass and every row must equal the snapshot of
   that moment — rows missing before it and rows present after it are counted (both must be 0).
6. ``stellar restore --to latest``: RPO = seconds of markers lost; RTO = seconds from the command
   to an API answering ``/health`` (database ok) and a customer's ``/api/credits`` correctly.

    python -m bench.drill                 # the full drill: 60 s of writes, writes bench/drill.md
    python -m bench.drill --duration 6    # a short one (what the test runs), report on stdout
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa

from api.services.customers import create_customer
from bench._s3 import local_s3
from billing.ledger import Ledger
from core.database import make_engine, make_sessionmaker
from core.embedded_postgres import EmbeddedPostgres
from core.migrate import upgrade_in_thread
from core.object_store import open_store
from core.pg_backup import take_base_backup
from core.processes import Child, free_port, wait_for_port
from core.settings import StorageSettings
from core.wal_archive import WalArchiver
from models.db import Customer, Order, Payment

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "bench" / "drill.md"


def progress(message: str) -> None:
    print(f"[drill {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- state and its snapshot

Snapshot = dict[str, dict]


async def snapshot(engine) -> Snapshot:
    """Every row the drill compares, keyed by primary key."""
    queries = {
        "customers": "SELECT id, email FROM customer",
        "accounts": "SELECT customer_id, subscription_credits, pack_credits, held FROM credit_account",
        "ledger_entries": "SELECT id, customer_id, kind, amount, balance_after, held_after FROM ledger_entry",
        "holds": "SELECT order_id, status, captured, released FROM credit_hold",
        "orders": 'SELECT id, status, credits_held, credits_captured, credits_released FROM "order"',
        "payments": "SELECT id, status, credits FROM payment",
    }
    out: Snapshot = {}
    async with engine.connect() as conn:
        for name, q in queries.items():
            out[name] = {r[0]: tuple(r[1:]) for r in (await conn.execute(sa.text(q))).all()}
    return out


def compare(expected: Snapshot, actual: Snapshot) -> tuple[int, int]:
    """(rows missing or different, rows present that were written after the moment)."""
    missing = after = 0
    for table, rows in expected.items():
        got = actual.get(table, {})
        missing += sum(1 for k, v in rows.items() if got.get(k) != v)
        after += sum(1 for k in got if k not in rows)
    return missing, after


# --------------------------------------------------------------------------- the writes


class Writer:
    """Business writes through the real ledger (exactly-once keys like the application's)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.sessionmaker = make_sessionmaker(engine)
        self.ledger = Ledger(engine)

    async def customer_with_payment(self, tag: str, credits: int = 20) -> int:
        async with self.sessionmaker() as s:
            c = Customer(email=f"{tag}-{uuid.uuid4().hex[:8]}@drill.example", name=tag)
            s.add(c)
            await s.flush()
            p = Payment(customer_id=c.id, pack_id="pack_10", credits=credits, amount_cents=900, status="completed",
                        completed_at=datetime.now(UTC))
            s.add(p)
            await s.commit()
            customer_id, payment_id = c.id, p.id
        await self.ledger.grant(customer_id, credits, "pack", f"payment:{payment_id}", reference_type="payment",
                                reference_id=str(payment_id), actor="stripe", reason="drill pack")
        return customer_id

    async def order(self, customer_id: int, name: str, cost: int = 3) -> int:
        async with self.sessionmaker() as s:
            o = Order(customer_id=customer_id, status="held", target_name=name, ra_j2000=5.588, dec_j2000=-5.39,
                      cost=cost, credits_held=cost)
            s.add(o)
            await s.commit()
            order_id = o.id
        await self.ledger.hold(customer_id, order_id, cost)
        return order_id

    async def capture(self, order_id: int, capture: int) -> None:
        """Capture ``capture`` credits of the order's hold, release the rest, mark it completed."""
        result = await self.ledger.capture(order_id, capture, reason="drill settle")
        async with self.engine.begin() as conn:
            await conn.execute(sa.update(Order).where(Order.id == order_id).values(
                status="completed", credits_captured=result.captured, credits_released=result.released,
                finished_at=datetime.now(UTC)))


# --------------------------------------------------------------------------- processes


def _stellar_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STELLAR_")}
    # Nothing of another stack on this machine is touched: Temporal and Voyager point at closed ports.
    env.update({"STELLAR_TEMPORAL__ADDRESS": f"127.0.0.1:{free_port()}", "STELLAR_VOYAGER__HOST": "127.0.0.1",
                "STELLAR_VOYAGER__PORT": str(free_port()), "STELLAR_LOG_JSON": "true", **values})
    return env


def _storage_env(cfg: StorageSettings) -> dict[str, str]:
    return {"STELLAR_STORAGE__URL": cfg.url, "STELLAR_STORAGE__ENDPOINT": cfg.endpoint or "",
            "STELLAR_STORAGE__ALLOW_HTTP": str(cfg.allow_http).lower(),
            "STELLAR_STORAGE__ACCESS_KEY_ID": cfg.access_key_id.get_secret_value(),
            "STELLAR_STORAGE__SECRET_ACCESS_KEY": cfg.secret_access_key.get_secret_value()}


def stellar(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """``stellar <args>`` as an operator runs it (a new process)."""
    return subprocess.run([sys.executable, "-m", "stellar_cli", *args], env=env, capture_output=True, text=True,
                          cwd=ROOT, timeout=900)


# --------------------------------------------------------------------------- the drill


async def _api_ready(workdir: Path, url: str, key: str, source_account: tuple, res: DrillResult) -> None:
    """Start the API on the restored database and wait until it serves: ``/health`` with the
    database ok, and a restored customer's ``/api/credits`` (compared with the source)."""
    api_port = free_port()
    api = Child("api", [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
                        "--port", str(api_port)], workdir / "api.log",
                env=_stellar_env(STELLAR_DATABASE__URL=url, STELLAR_API__PORT=str(api_port)),
                ready=lambda c: wait_for_port(api_port, 120, c.proc, "api"))
    try:
        api.start()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=10) as http:
            while True:
                health = (await http.get("/health")).json()
                credits = await http.get("/api/credits", headers={"Authorization": f"Bearer {key}"})
                if health["checks"]["database"]["ok"] and credits.status_code == 200:
                    break
                await asyncio.sleep(0.1)
        body = credits.json()
        subscription, pack, held = source_account
        if (body["available"], body["held"]) != (subscription + pack, held):
            res.notes.append(f"the API's balance after the restore {body} differs from the source {source_account}")
    finally:
        api.stop()


@dataclass
class DrillResult:
    store: str = ""
    populated_customers: int = 0
    markers: int = 0
    marker_interval: float = 0.0
    wal_upload_interval: float = 0.0
    base_backup_seconds: float = 0.0
    base_backup_bytes: int = 0
    target_marker: int = 0
    target: str = ""
    pitr_restore_seconds: float = 0.0
    pitr_rows_compared: int = 0
    pitr_rows_missing: int = 0
    pitr_rows_after: int = 0
    pitr_ledger_check: str = ""
    latest_marker_restored: int = -1
    rpo_seconds: float = 0.0
    latest_rows_missing: int = 0
    latest_rows_after: int = 0
    latest_ledger_check: str = ""
    rto_seconds: float = 0.0
    rto_restore_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        ok = (self.pitr_rows_missing == 0 and self.pitr_rows_after == 0 and self.pitr_ledger_check == "ledger OK"
              and self.rpo_seconds <= 60)
        return f"""# Restore drill

`make drill` (bench/drill.py) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {'PASS' if ok else 'FAIL'}.
Store: {self.store}. WAL uploaded every {self.wal_upload_interval:g} s (`backup.wal_upload_interval`).

| | measured | required |
|---|---|---|
| rows missing before the chosen moment | {self.pitr_rows_missing} of {self.pitr_rows_compared} | 0 |
| rows present from after it | {self.pitr_rows_after} | 0 |
| `stellar ledger check` on the restored database | {self.pitr_ledger_check} | ledger OK |
| RPO at `latest` (seconds of writes lost) | {self.rpo_seconds:.1f} s (bound: the upload interval, {self.wal_upload_interval:g} s) | ≤ 60 s |
| RTO (`stellar restore` → API ready) | {self.rto_seconds:.1f} s | — |

## What ran

- Populated {self.populated_customers} customers (API keys, pack payments and grants, orders held and settled on
  the ledger); base backup: {self.base_backup_bytes / 1e6:.1f} MB in {self.base_backup_seconds:.1f} s
  (`pg_basebackup -Ft -z -X stream`, checked by `pg_verifybackup`).
- {self.markers} markers, one every {self.marker_interval:g} s: each a new customer, payment, grant, order,
  hold and the settlement of the previous marker's order, with a snapshot of every compared row after it.
- Point in time: `stellar restore --to {self.target}` (between marker {self.target_marker} and
  {self.target_marker + 1}) took {self.pitr_restore_seconds:.1f} s; customers, accounts, ledger entries,
  holds, orders and payments compared with the snapshot after marker {self.target_marker}.
- Lost disk right after the last marker (archiver killed, no last upload), then `stellar restore --to latest`:
  last marker restored {self.latest_marker_restored} of {self.markers - 1}; compared with that marker's snapshot:
  {self.latest_rows_missing} rows missing, {self.latest_rows_after} after; ledger check: {self.latest_ledger_check}.
- RTO {self.rto_seconds:.1f} s = restore {self.rto_restore_seconds:.1f} s (download, WAL replay, clean stop)
  + PostgreSQL start on the restored directory + the API (uvicorn) answering `/health` with the database up and
  `GET /api/credits` with a restored customer's key.
{''.join(f'{chr(10)}- {n}' for n in self.notes)}
"""


async def _populate(writer: Writer, sessionmaker, customers: int) -> tuple[str, int]:
    """Customers with orders and payments; returns one customer's API key and id (for the RTO check)."""
    key, key_customer = "", 0
    for i in range(customers):
        if i == 0:
            c = await create_customer(sessionmaker, email=f"drill-key-{uuid.uuid4().hex[:8]}@drill.example")
            key, key_customer = c.api_key, c.customer_id
            await writer.ledger.grant(key_customer, 20, "pack", f"drill-grant:{key_customer}",
                                      reference_type="admin", reference_id="drill", actor="drill", reason="drill")
            customer_id = key_customer
        else:
            customer_id = await writer.customer_with_payment(f"pop{i}")
        await writer.ledger.grant(customer_id, 5, "subscription", f"invoice:drill-{customer_id}",
                                  reference_type="invoice", reference_id=f"in_drill_{customer_id}", actor="stripe",
                                  reason="drill subscription")
        first = await writer.order(customer_id, f"pop-{i}-a")
        await writer.order(customer_id, f"pop-{i}-b")
        await writer.capture(first, 2)
    return key, key_customer


def _ledger_check(url: str) -> str:
    r = stellar(["ledger", "check"], _stellar_env(STELLAR_DATABASE__URL=url))
    return "ledger OK" if r.returncode == 0 else f"exit {r.returncode}: {(r.stdout + r.stderr).strip()[-300:]}"


async def _restored_snapshot(data_dir: Path) -> tuple[Snapshot, EmbeddedPostgres]:
    pg = EmbeddedPostgres(data_dir, free_port(), database="stellar")
    pg.start()
    engine = make_engine(pg.url(), pool_size=1)
    try:
        return await snapshot(engine), pg
    finally:
        await engine.dispose()


async def run_drill(workdir: Path, *, duration: float = 60.0, marker_interval: float = 2.0,
                    wal_upload_interval: float = 10.0, customers: int = 50, measure_rto: bool = True) -> DrillResult:
    """Run the drill in ``workdir`` (scratch); returns the figures. Raises on a broken step.
    ``measure_rto`` False: the latest restore is checked without starting the API (the test's
    short drill)."""
    res = DrillResult(marker_interval=marker_interval, wal_upload_interval=wal_upload_interval,
                      populated_customers=customers)
    with local_s3(workdir) as storage:
        res.store = f"{storage.url} on moto_server (S3 API over HTTP)"
        store = open_store(storage)
        source = EmbeddedPostgres(workdir / "source", free_port(), database="stellar")
        source.start()
        url = source.url()
        upgrade_in_thread(url)
        engine = make_engine(url, pool_size=2)
        archiver = WalArchiver(url, store, workdir / "spool", interval=wal_upload_interval)
        archiver.start()
        stop = threading.Event()
        upload_errors: list[BaseException] = []

        def upload_loop() -> None:
            try:
                archiver.run(stop, final_pass=False)
            except BaseException as exc:  # noqa: BLE001 - re-raised by the drill below
                upload_errors.append(exc)

        uploader = threading.Thread(target=upload_loop, daemon=True)
        uploader.start()
        try:
            writer = Writer(engine)
            progress(f"populating {customers} customers")
            key, key_customer = await _populate(writer, make_sessionmaker(engine), customers)
            t0 = time.monotonic()
            manifest = await asyncio.to_thread(take_base_backup, url, store)
            res.base_backup_seconds = time.monotonic() - t0
            res.base_backup_bytes = sum(f.size for f in manifest.files.values())
            progress(f"base backup {manifest.label}: {res.base_backup_bytes / 1e6:.1f} MB; writing markers")
            snapshots: list[Snapshot] = []
            done_at: list[datetime] = []
            started_at: list[datetime] = []
            previous = None
            end = time.monotonic() + duration
            k = 0
            while True:
                started_at.append(datetime.now(UTC))
                cid = await writer.customer_with_payment(f"marker{k}")
                order_id = await writer.order(cid, f"marker-{k}")
                if previous is not None:
                    await writer.capture(previous, 2)
                previous = order_id
                done_at.append(datetime.now(UTC))
                snapshots.append(await snapshot(engine))
                k += 1
                if time.monotonic() >= end and k >= 4:
                    break  # the disk is lost right after the last marker
                await asyncio.sleep(marker_interval)
            res.markers = k
            # The disk is lost now: no last upload, the receiver and the server die with it.
            stop.set()
            uploader.join(timeout=60)
            archiver.stop()
            if upload_errors:
                raise RuntimeError(f"WAL archiving failed during the drill: {upload_errors[0]}")
        except Exception as exc:
            raise RuntimeError(f"{exc}\n--- source PostgreSQL log ---\n{source._log_tail()}") from exc
        finally:
            await engine.dispose()
            source.stop()
        progress(f"{res.markers} markers written; disk lost")

        # Point in time: between two markers in the first half (long since uploaded).
        res.target_marker = max(0, res.markers // 2 - 1)
        i = res.target_marker
        target = done_at[i] + (started_at[i + 1] - done_at[i]) / 2
        res.target = target.isoformat()
        env = _stellar_env(**_storage_env(storage))
        t0 = time.monotonic()
        r = stellar(["restore", "--to", res.target, "--into", str(workdir / "pitr")], env)
        res.pitr_restore_seconds = time.monotonic() - t0
        if r.returncode != 0:
            raise RuntimeError(f"stellar restore --to {res.target} failed: {r.stdout}{r.stderr}")
        restored, pg = await _restored_snapshot(workdir / "pitr")
        try:
            res.pitr_ledger_check = _ledger_check(pg.url())
        finally:
            pg.stop()
        res.pitr_rows_compared = sum(len(v) for v in snapshots[i].values())
        res.pitr_rows_missing, res.pitr_rows_after = compare(snapshots[i], restored)
        progress(f"point in time: {res.pitr_rows_missing} missing, {res.pitr_rows_after} after, {res.pitr_ledger_check}")

        # Latest, timed from the command to a ready API.
        t0 = time.monotonic()
        r = stellar(["restore", "--to", "latest", "--into", str(workdir / "latest")], env)
        res.rto_restore_seconds = time.monotonic() - t0
        if r.returncode != 0:
            raise RuntimeError(f"stellar restore --to latest failed: {r.stdout}{r.stderr}")
        pg = EmbeddedPostgres(workdir / "latest", free_port(), database="stellar")
        pg.start()
        try:
            if measure_rto:
                await _api_ready(workdir, pg.url(), key, snapshots[-1]["accounts"][key_customer], res)
                res.rto_seconds = time.monotonic() - t0
            engine = make_engine(pg.url(), pool_size=1)
            try:
                latest = await snapshot(engine)
            finally:
                await engine.dispose()
            res.latest_ledger_check = _ledger_check(pg.url())
        finally:
            pg.stop()
        # The newest marker whose every row came back (rows "after" it are the next marker's first
        # writes, when the disk was lost in the middle of one).
        for k in range(res.markers):
            if compare(snapshots[k], latest)[0] == 0:
                res.latest_marker_restored = k
        if res.latest_marker_restored < 0:
            diffs = {t: [(k, v, latest[t].get(k)) for k, v in rows.items() if latest[t].get(k) != v][:3]
                     for t, rows in snapshots[0].items()}
            raise RuntimeError(f"the latest restore holds no marker's complete state; vs marker 0: {diffs}")
        res.latest_rows_missing, res.latest_rows_after = compare(snapshots[res.latest_marker_restored], latest)
        res.rpo_seconds = (done_at[-1] - done_at[res.latest_marker_restored]).total_seconds()
        progress(f"latest: marker {res.latest_marker_restored} of {res.markers - 1}; RPO {res.rpo_seconds:.1f} s; "
                 f"RTO {res.rto_seconds:.1f} s")
    return res


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of marker writes (default 60)")
    parser.add_argument("--marker-interval", type=float, default=2.0, help="seconds between markers")
    parser.add_argument("--wal-upload-interval", type=float, default=10.0, help="seconds between WAL uploads")
    parser.add_argument("--customers", type=int, default=50, help="customers populated before the base backup")
    parser.add_argument("--report", type=Path, default=None, help=f"write the report here (default: {REPORT} "
                        "for a full-length run, stdout otherwise)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stellar-drill-") as tmp:
        res = asyncio.run(run_drill(Path(tmp), duration=args.duration, marker_interval=args.marker_interval,
                                    wal_upload_interval=args.wal_upload_interval, customers=args.customers))
    text = res.markdown()
    report = args.report or (REPORT if args.duration >= 60 else None)
    if report:
        report.write_text(text)
        progress(f"wrote {report}")
    print(text)
    ok = res.pitr_rows_missing == 0 and res.pitr_rows_after == 0 and res.pitr_ledger_check == "ledger OK"
    return 0 if ok and res.rpo_seconds <= 60 else 1


if __name__ == "__main__":
    sys.exit(main())
