"""The Stellar worker: builds the clients, registers every workflow and activity, runs the worker.

    python worker.py            # or: stellar worker
    python worker.py --role workflows  &  python worker.py --role activities   # the same, in two processes

Builds, once per process: the PostgreSQL engine + session maker, the credit ledger, the Temporal
client (``core.temporal.connect_temporal``) and, in the single-telescope shape only, the Voyager
pool (``core.voyager_clients.pool_from_settings``, which reconnects in the background, so the worker
starts even while Voyager is down) with the Voyager activities (:func:`site_activities`). In network
mode (``orders.site_workers``, docs/network.md) it builds no Voyager client at all: each telescope's
``stellar site-worker`` (``site_worker.py``) runs those activities on ``site-<slug>``. Registers
``OrderWorkflow`` and ``ObservatoryMonitorWorkflow`` and the payment workflows with their activities on
``settings.temporal.task_queue``, and makes sure the monitor workflows run (``ensure_monitor``; one
per telescope however many workers start; in network mode one per telescope not retired), the daily Stripe
reconciliation, frame-retention and database-backup schedules and the ``order-repair`` schedule
(every ``repair.every_minutes``) exist, and runs the e-mail outbox's SMTP sender
(``mail/sender.py``) when ``mail.host`` is set. This is the one place that registers workflows and
activities; the names they share come from ``models/temporal_contract.py``. Tests and the demo run it
in-process through :func:`open_worker` / :func:`run_worker`. ``--role`` (:data:`ROLES`) splits that
work between a workflows process and an activities process on the same task queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import stripe
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.backup_ops import BackupActivities
from activities.ingest import IngestActivities
from activities.ledger_ops import LedgerActivities
from activities.link_wait import SiteWaitActivities
from activities.monitor import MonitorActivities
from activities.order_store import OrderStoreActivities
from activities.payment_store import PaymentStore
from activities.reconciliation import ReconcileActivities
from activities.stripe_ops import StripeActivities
from activities.subscription_store import SubscriptionStore
from activities.repair import RepairActivities
from activities.retention_ops import RetentionActivities
from activities.session_wake import WAKE_EVENTS, SessionWake
from activities.set_ops import SetActivities
from activities.set_sites import SetSiteActivities
from activities.voyager_ops import VoyagerActivities
from billing.ledger import Ledger
from billing.stripe_client import make_stripe_client
from core.database import make_engine, make_sessionmaker
from core.schedules import ensure_data_care_schedules, ensure_reconciliation_schedule, ensure_repair_schedule
from core.settings import Settings, SettingsError, check_production, get_settings
from core.temporal import DATA_CONVERTER, connect_temporal
from core.workflow_runner import ContextFreeSandboxRunner, context_free
from core.voyager_clients import event_stream_from_settings, pool_from_settings
from mail.sender import MailSender
from models.db import Telescope
from models.orders import MonitorInput
from models.telescopes import TelescopeStatus, site_task_queue
from models.temporal_contract import monitor_workflow_id
from voyager.pool import VoyagerPool
from voyager.robotarget import RoboTarget
from workflows.observatory_monitor import ObservatoryMonitorWorkflow
from workflows.backup import BackupWorkflow
from workflows.customer_set import CustomerSetWorkflow
from workflows.order import OrderWorkflow
from workflows.pack_payment import PackPaymentWorkflow
from workflows.reconciliation import ReconciliationWorkflow
from workflows.subscription import SubscriptionWorkflow
from workflows.repair import RepairWorkflow
from workflows.retention import RetentionWorkflow

log = structlog.get_logger(__name__)


@dataclass
class WorkerDeps:
    """What the activities need; ``owned`` closers run when the worker stops."""

    settings: Settings
    client: Client
    engine: AsyncEngine
    pool: VoyagerPool | None  # None in network mode: no Voyager link here
    owned: list[Callable[[], Any]] = field(default_factory=list)

    def local_activities(self) -> list[Callable[..., Any]]:
        """The activities workflows run as *local* activities (the order's database steps,
        ``workflows/order.py`` ``_db``): what a ``workflows`` worker runs itself (:data:`ROLES`)."""
        sessionmaker = make_sessionmaker(self.engine)
        store = OrderStoreActivities(sessionmaker, self.settings)
        return [store.load_order, store.set_status, store.assign_guids, store.record_abort, store.finalize_order,
                SiteWaitActivities(sessionmaker).note_site_wait]

    def activities(self, *, monitor_events: bool = True) -> list[Callable[..., Any]]:
        """Every activity of the order and monitor workflows, bound to these clients (the Voyager
        ones only with a pool); ``monitor_events``: the monitor and the session watches are woken
        by dashboard events."""
        sessionmaker = make_sessionmaker(self.engine)
        rt = RoboTarget(self.pool) if self.pool is not None else None
        store = OrderStoreActivities(sessionmaker, self.settings)
        ledger = LedgerActivities(Ledger(self.engine), sessionmaker, self.settings)
        site_wait = SiteWaitActivities(sessionmaker)
        set_sites = SetSiteActivities(sessionmaker, self.settings)
        # Without a Voyager link the repair sweep neither checks nor stops targets (its report says so).
        repair = RepairActivities(self.engine, rt, self.settings)
        retention = RetentionActivities(sessionmaker, self.settings)
        backup = BackupActivities(self.settings)
        voyager = ([] if rt is None else
                   site_activities(rt, sessionmaker, self.client, self.settings, self.owned, monitor_events=monitor_events))
        return [
            store.load_order, store.set_status, store.assign_guids, store.record_abort, store.finalize_order,
            ledger.price_and_hold, ledger.settle, ledger.settle_and_finalize, site_wait.note_site_wait, set_sites.sites_of_set,
            *voyager,
            repair.sweep,
            retention.scan, retention.notify, retention.delete_frames,
            backup.base_backup, backup.prune,
        ]


def site_activities(rt: RoboTarget, sessionmaker: async_sessionmaker[AsyncSession], client: Client, settings: Settings,
                    owned: list[Callable[[], Any]], *, monitor_events: bool = True) -> list[Callable[..., Any]]:
    """The Voyager-facing activities (submit, stop/disable, Set sync, watch a session, sweep, wait
    for the run's end, the monitor's watch) on ``rt``: what a site worker runs (``site_worker.py``),
    and the worker itself in the single-telescope shape. ``settings.orders.telescope`` names the
    telescope, ``settings.voyager.profile_name`` its profile; ``monitor_events``: the monitor and the
    session watches are woken by dashboard events (one shared connection, its closer appended to
    ``owned``)."""
    voyager = VoyagerActivities(rt, settings, sessionmaker)
    sets = SetActivities(rt, settings, sessionmaker)
    wake = SessionWake((lambda: event_stream_from_settings(settings.voyager, names=WAKE_EVENTS))
                       if monitor_events else None)
    owned.append(wake.close)
    ingest = IngestActivities(rt, sessionmaker, settings, wake)
    # The monitor ingests the frames of the sessions it sees change itself (activities/monitor_ingest.py).
    monitor = MonitorActivities(rt, sessionmaker, client, settings, events=monitor_events,
                                ingest=ingest.ingest_session)
    return [voyager.submit_target, voyager.stop_target, sets.sync_set,
            ingest.watch_session, ingest.sweep_target, ingest.close_target, ingest.wait_run_end, monitor.watch_observatory]


#: The payment workflows (docs/payments.md); tests run them on a worker of their own.
PAYMENT_WORKFLOWS: list[type] = [SubscriptionWorkflow, PackPaymentWorkflow, ReconciliationWorkflow]
#: Workflows this worker runs: orders, the observatory monitor, repair, payments, retention and backups.
WORKFLOWS: list[type] = [OrderWorkflow, ObservatoryMonitorWorkflow, RepairWorkflow, *PAYMENT_WORKFLOWS,
                         RetentionWorkflow, BackupWorkflow, CustomerSetWorkflow]
#: Modules the workflow sandbox takes from the worker process instead of importing them again for
#: every workflow run: each is deterministic and side-effect-free at import and keeps no mutable
#: module state. ``workflows`` is among them: a workflow file imports only the standard library,
#: ``temporalio`` and these modules, and keeps its state on the workflow instance, so one copy per
#: worker serves every run (a sandboxed copy of ``workflows/order.py`` per waiting order was most of
#: its memory, bench/worker_memory.py). The sandbox's call restrictions then no longer see workflow
#: code on a worker; the replay tests (tests/replay) load the workflow files in the SDK's default,
#: fully restricted sandbox, so a non-deterministic call still fails there (docs/conventions.md).
SANDBOX_PASSTHROUGH: tuple[str, ...] = ("workflows", "models", "activities", "pydantic", "pydantic_core")
#: Heartbeats reach the server at least this often, so a cancellation (an abort during a long
#: activity) is delivered within seconds rather than 0.8 × the heartbeat timeout.
HEARTBEAT_THROTTLE = timedelta(seconds=2)
#: Memo key of a monitor workflow: the queue its watch runs on ("" = the workflow's own).
MONITOR_ROUTE = "site_queue"
#: What one worker process runs (``stellar worker --role``, docs/operations.md §5):
#: ``all`` = workflows and activities (the default); ``workflows`` = the workflows and the local
#: activities they run (database steps), no activity task polled, no Voyager link; ``activities``
#: = every activity (and the mail sender), no workflow. A ``workflows`` and an ``activities``
#: process on the same task queue do what one ``all`` process does; each can be sized and scaled
#: on its own (a waiting order costs the workflows process as much as it costs one ``all``
#: process: bench/worker_memory.py measures both).
ROLES: tuple[str, ...] = ("all", "workflows", "activities")


def workflow_runner(*extra_passthrough: str) -> SandboxedWorkflowRunner:
    """The SDK's sandbox with :data:`SANDBOX_PASSTHROUGH` (and ``extra_passthrough``: module names,
    for a workflow file outside ``workflows``) added to its default passthrough modules; without the
    SDK's per-payload serialization-context look-ups while Stellar's data converter has no codec
    and no external storage (core/workflow_runner.py)."""
    runner = ContextFreeSandboxRunner if context_free(DATA_CONVERTER) else SandboxedWorkflowRunner
    return runner(restrictions=SandboxRestrictions.default.with_passthrough_modules(
        *SANDBOX_PASSTHROUGH, *extra_passthrough))


def worker_options(*extra_passthrough: str) -> dict[str, Any]:
    """The ``Worker`` keyword arguments of every Stellar worker that runs workflows: the sandbox of
    :func:`workflow_runner` and the heartbeat throttle. The memory bench's bare ceiling
    (bench/bare_worker.py) runs with exactly these, so its ceiling is like for like. The SDK's
    default ``max_cached_workflows`` (1,000) is kept: a smaller cache bounds the memory of waiting
    orders but replays each evicted order's history when it wakes (bench/worker_memory.py)."""
    return {
        "workflow_runner": workflow_runner(*extra_passthrough),
        "max_heartbeat_throttle_interval": HEARTBEAT_THROTTLE,
        "default_heartbeat_throttle_interval": HEARTBEAT_THROTTLE,
    }


async def ensure_monitor(client: Client, telescope: str, task_queue: str, site_queue: str | None = None) -> str:
    """Start the telescope's monitor workflow unless it runs (USE_EXISTING); returns its id.
    ``site_queue``: where its watch activity runs (network mode), None = ``task_queue``.

    The route is in the memo (``site_queue``, carried over continue-as-new): a running monitor
    routed otherwise — the install switched between the single-telescope shape and network mode —
    would watch a queue no worker polls, so it is terminated and started again routed as wanted
    (its catch-up pass then signals whatever ran meanwhile)."""
    workflow_id = monitor_workflow_id(telescope)
    route = site_queue or ""
    for _ in range(2):
        await client.start_workflow(
            ObservatoryMonitorWorkflow.run,
            MonitorInput(telescope=telescope, site_queue=site_queue),
            id=workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            memo={MONITOR_ROUTE: route},
        )
        memo = await (await client.get_workflow_handle(workflow_id).describe()).memo()
        if memo.get(MONITOR_ROUTE, "") == route:
            break
        log.info("monitor.rerouted", workflow_id=workflow_id, was=memo.get(MONITOR_ROUTE, ""), now=route)
        with contextlib.suppress(RPCError):  # already gone: the next start creates it
            await client.get_workflow_handle(workflow_id).terminate(reason=f"re-routed to {route or task_queue}")
    return workflow_id


async def ensure_site_monitors(client: Client, engine: AsyncEngine, task_queue: str) -> list[str]:
    """Network mode: one monitor per telescope that is not retired (maintenance keeps its orders),
    its watch on ``site-<slug>``; returns the workflow ids."""
    async with make_sessionmaker(engine)() as session:
        slugs = (await session.exec(select(Telescope.slug).where(Telescope.status != TelescopeStatus.RETIRED.value)
                                    .order_by(Telescope.slug))).all()
    return [await ensure_monitor(client, slug, task_queue, site_task_queue(slug)) for slug in slugs]


def payment_activities(settings: Settings, engine: AsyncEngine,
                       stripe_client: stripe.StripeClient | None = None) -> list[Callable[..., Any]]:
    """The payment activities, bound to ``engine`` and a Stripe client for ``settings.stripe``."""
    client = stripe_client or make_stripe_client(settings.stripe)
    s = StripeActivities(client, settings.stripe)
    store = SubscriptionStore(engine)
    pay = PaymentStore(engine)
    rec = ReconcileActivities(engine)
    return [
        s.ensure_customer, s.attach_payment_method, s.create_subscription, s.delete_subscription,
        s.set_cancel_at_period_end, s.change_plan, s.create_payment_intent, s.cancel_payment_intent, s.list_paid,
        store.plan_table, store.load_customer, store.set_stripe_customer, store.save_subscription, store.apply_facts,
        pay.attach_intent, pay.close_payment, rec.reconcile_ledger,
    ]


@contextlib.asynccontextmanager
async def open_worker(
    settings: Settings | None = None,
    *,
    client: Client | None = None,
    engine: AsyncEngine | None = None,
    task_queue: str | None = None,
    start_monitor: bool | None = None,
    start_reconciliation: bool = True,  # and the data-care schedules
    start_repair: bool = True,
    monitor_events: bool = True,
    extra_workflows: Sequence[type] = (),
    extra_activities: Sequence[Callable[..., Any]] = (),
    start_mail: bool | None = None,
    role: str = "all",
) -> AsyncIterator[Worker]:
    """Build the clients (those not given), start a running worker, yield it, then shut down.

    ``client``/``engine``: reuse the caller's (not closed here); ``task_queue`` default
    ``settings.temporal.task_queue``; ``start_monitor`` default ``settings.orders.start_monitor``;
    ``monitor_events``: the monitor and the session watches listen to dashboard events to poll early;
    ``start_repair``: create the ``order-repair`` schedule (unless ``repair.every_minutes`` is 0);
    ``start_mail``: run the outbox's SMTP sender beside the worker (default: when ``mail.host`` is set);
    ``role``: one of :data:`ROLES` — ``workflows`` runs no Voyager pool, no mail sender and polls no
    activity task; ``activities`` runs no workflow and starts no monitor or schedule (the
    ``workflows`` process does).
    Raises SettingsError on an unsafe production configuration (``core.settings.check_production``),
    ValueError on an unknown ``role``.
    """
    if role not in ROLES:
        raise ValueError(f"unknown worker role {role!r}: one of {', '.join(ROLES)}")
    runs_workflows, runs_activities = role != "activities", role != "workflows"
    settings = settings or get_settings()
    check_production(settings)
    queue = task_queue or settings.temporal.task_queue
    owned: list[Callable[[], Any]] = []
    if client is None:
        client = await connect_temporal(settings)
    if engine is None:
        engine = make_engine(settings.database.effective_url(), settings.database.pool_size)
        owned.append(engine.dispose)
    network = settings.orders.site_workers
    pool = None
    if not network and runs_activities:  # the single-telescope shape: this worker is also the telescope's site worker
        pool = pool_from_settings(settings.voyager)
        await pool.start(strict=False)
        owned.append(pool.close)
    deps = WorkerDeps(settings, client, engine, pool, owned)
    options = worker_options()
    if runs_activities:
        activities = [*deps.activities(monitor_events=monitor_events), *payment_activities(settings, engine),
                      *extra_activities]
        if not runs_workflows:
            del options["workflow_runner"]
    else:  # the local activities only: a local activity runs in the worker of its workflow
        activities = [*deps.local_activities(), *extra_activities]
        options["no_remote_activities"] = True
    worker = Worker(
        client,
        task_queue=queue,
        workflows=[*WORKFLOWS, *extra_workflows] if runs_workflows else [],
        activities=activities,
        **options,
    )
    try:
        async with worker:
            log.info("worker.started", task_queue=queue, telescope=None if network else settings.orders.telescope,
                     network=network, role=role)
            if runs_workflows:
                if settings.orders.start_monitor if start_monitor is None else start_monitor:
                    if network:
                        await ensure_site_monitors(client, engine, queue)
                    else:
                        await ensure_monitor(client, settings.orders.telescope, queue)
                if start_reconciliation:
                    await ensure_reconciliation_schedule(client, queue)
                    await ensure_data_care_schedules(client, queue, settings)
                if start_repair:
                    await ensure_repair_schedule(client, queue, settings.repair.every_minutes)
            mail = runs_activities and (bool(settings.mail.host) if start_mail is None else start_mail)
            async with _mail_sender(settings, engine, mail):
                yield worker
    finally:
        for close in reversed(owned):
            with contextlib.suppress(Exception):
                await close()
        log.info("worker.stopped", task_queue=queue)


@contextlib.asynccontextmanager
async def _mail_sender(settings: Settings, engine: AsyncEngine, enabled: bool) -> AsyncIterator[None]:
    """The outbox's SMTP sender as a task of the worker process (docs/mail.md says why a loop and
    not a Temporal schedule: mail within seconds, exactly-once kept by the database claim)."""
    if not enabled:
        yield
        return
    stop = asyncio.Event()
    task = asyncio.create_task(MailSender(engine, settings).run_forever(stop), name="mail-sender")
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            async with asyncio.timeout(settings.mail.timeout_seconds + 5):
                await task


async def run_worker(
    settings: Settings | None = None,
    *,
    client: Client | None = None,
    engine: AsyncEngine | None = None,
    task_queue: str | None = None,
    start_monitor: bool | None = None,
    start_reconciliation: bool = True,
    stop: asyncio.Event | None = None,
    role: str = "all",
) -> None:
    """Run the worker until ``stop`` is set (or the task is cancelled). Same arguments as
    :func:`open_worker`."""
    async with open_worker(settings, client=client, engine=engine, task_queue=task_queue,
                           start_monitor=start_monitor, start_reconciliation=start_reconciliation, role=role):
        await (stop.wait() if stop is not None else asyncio.Event().wait())


async def main(role: str = "all") -> int:
    """Entry point of ``python worker.py [--role ROLE]`` / ``stellar worker [--role ROLE]``
    (:data:`ROLES`): runs until SIGINT/SIGTERM; 2 on unsafe settings or an unknown role."""
    from core.logging import configure_logging

    if role not in ROLES:
        print(f"stellar worker: unknown role {role!r}: one of {', '.join(ROLES)}", file=sys.stderr)
        return 2
    try:
        settings = get_settings()
        check_production(settings)
    except SettingsError as exc:
        # Before any connection: the operator reads which variable to fix, not a traceback.
        print(f"stellar worker: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_json)
    await run_worker(settings, stop=stop_on_signals(), role=role)
    return 0


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (where the loop supports signal handlers)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop


def parse_role(argv: Sequence[str]) -> str:
    """The ``--role ROLE`` of ``python worker.py`` (default ``all``; argparse exits 2 otherwise)."""
    import argparse

    parser = argparse.ArgumentParser(prog="worker.py", description="The Stellar worker.")
    parser.add_argument("--role", choices=ROLES, default="all", help="what this process runs (docs/operations.md)")
    return parser.parse_args(list(argv)).role


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_role(sys.argv[1:]))))
