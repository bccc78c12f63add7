"""Pydantic models crossing the order workflow's Temporal boundary (docs/order-workflow.md).

One model in and one out for every workflow, activity, signal, update and query of
``workflows/order.py`` and ``workflows/observatory_monitor.py``. Units: exposures and integration
in seconds, coordinates ``ra_j2000`` hours 0–24 / ``dec_j2000`` degrees −90…90, credits integers,
datetimes aware UTC. SQLModel table objects never cross this boundary (conventions, Temporal).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from models.billing import SettlementOutcome


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _released(name: str, old_name: str, **default: int) -> Any:
    """A released-credits field that also reads its name from before the rename (``refunded``,
    ``credits_refunded``): recorded workflow histories and stored ``Order.report`` JSON carry the
    old name and must still decode. Credits are released, never refunded (docs/pricing.md §5)."""
    return Field(validation_alias=AliasChoices(name, old_name), **default)


# --------------------------------------------------------------------------- statuses


class OrderStatus(StrEnum):
    """``Order.status`` and the ``OrderStatus`` search attribute (docs/order-workflow.md, Control)."""

    PENDING = "pending"
    HELD = "held"
    SUBMITTED = "submitted"  # in Voyager, waiting for its (next) night
    RUNNING = "running"  # a session is observing it
    SETTLING = "settling"
    COMPLETED = "completed"
    PARTIAL = "partial"
    ABORTED = "aborted"
    EXPIRED = "expired"
    FAILED = "failed"
    REJECTED = "rejected"


FINAL_STATUSES = frozenset(
    {
        OrderStatus.COMPLETED,
        OrderStatus.PARTIAL,
        OrderStatus.ABORTED,
        OrderStatus.EXPIRED,
        OrderStatus.FAILED,
        OrderStatus.REJECTED,
    }
)
#: Once here, an abort is refused (the update's validator): the hold is being or was resolved.
NO_ABORT_STATUSES = FINAL_STATUSES | {OrderStatus.SETTLING}


# --------------------------------------------------------------------------- workflow in/out


class OrderWorkflowInput(_M):
    """Start argument of ``OrderWorkflow`` (id ``order-<order_id>``). The order and its shots are
    rows the API inserted (``models/db.py`` Order/OrderShot); the workflow reads them itself."""

    order_id: int
    customer_id: int
    plan: str
    target_name: str


class OrderWorkflowResult(_M):
    """What ``OrderWorkflow.run`` returns: the final status and the money."""

    order_id: int
    status: OrderStatus
    reason: str = ""
    cost: int = 0
    credits_held: int = 0
    credits_captured: int = 0
    credits_released: int = _released("credits_released", "credits_refunded", default=0)
    frames_accepted: int = 0
    integration_seconds: float = 0.0


# --------------------------------------------------------------------------- signals, updates, queries


class SessionSignal(_M):
    """``session_started`` / ``session_ended`` from the observatory monitor (docs/voyager-protocol.md §7:
    ``RemoteRoboTargetGetSessionListByRun``). ``result``: 0 running, 1 OK, 2 aborted, 3 error.

    ``progress``: on a ``session_ended``, the order's progress once the monitor has ingested every
    frame of the session and written the night's end status (docs/order-workflow.md, step 3: the
    workflow then decides without a watch activity); None (signals from before the field, or a
    session the monitor could not ingest): the workflow's session watch ingests it."""

    session_guid: str
    run_guid: str
    target_guid: str
    result: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exit_text: str = ""
    progress: OrderProgress | None = None


class AbortRole(StrEnum):
    """Who asks for an abort; it decides the settlement outcome (``customer_abort`` or
    ``support_abort``, docs/pricing.md §6)."""

    CUSTOMER = "customer"
    SUPPORT = "support"


class AbortRequest(_M):
    """Payload of the ``abort`` update (API) and of the ``abort`` signal (Temporal UI / CLI):
    ``{"reason": "...", "requested_by": "...", "role": "customer" | "support"}``.

    ``requested_by`` is an audit name only (``order.aborted_by``); ``role`` decides the kind of
    abort. ``role`` None: a payload sent before the field existed (recorded histories, an older API
    during a rolling deploy): :func:`abort_role` reads it the way those workflows did."""

    reason: str = Field(default="", max_length=2000)
    requested_by: str = Field(default="", max_length=255)
    role: AbortRole | None = None


def abort_role(req: AbortRequest) -> AbortRole:
    """The request's role; for a payload from before ``role`` existed, the reading of that time
    (a ``support``/``admin`` audit name was a support abort) so in-flight orders settle as they would
    have."""
    if req.role is not None:
        return req.role
    legacy_support = req.requested_by.lower().startswith(("support", "admin"))
    return AbortRole.SUPPORT if legacy_support else AbortRole.CUSTOMER


class AbortResult(_M):
    """Answer of the ``abort`` update. ``first``: this request is the one that takes effect (later
    ones return the first requester's ``requested_by``/``reason``)."""

    order_id: int
    accepted: bool
    first: bool
    status: OrderStatus
    requested_by: str
    reason: str


class StatusQuery(_M):
    """Argument of the ``status`` query (empty: kept as a model so it can grow)."""


class SessionView(_M):
    """A session the workflow knows of; ``target_guid``: the order's Target it images (a mosaic
    has one per panel)."""

    session_guid: str
    run_guid: str = ""
    target_guid: str = ""
    result: int = 0
    ended: bool = False
    ingested: bool = False
    exit_text: str = ""


class OrderStatusView(_M):
    """Answer of the ``status`` query: the phase and every GUID the order owns in Voyager."""

    order_id: int
    status: OrderStatus
    phase: str
    reason: str = ""
    set_guid: str | None = None
    target_guid: str | None = None
    shot_guids: list[str] = Field(default_factory=list)
    sessions: list[SessionView] = Field(default_factory=list)
    deadline: datetime | None = None
    cost: int = 0
    credits_held: int = 0
    credits_captured: int = 0
    credits_released: int = 0
    abort_requested_by: str | None = None
    abort_reason: str | None = None
    aborts_received: int = 0
    shots_done: int = 0
    shots_total: int = 0


# --------------------------------------------------------------------------- order store activities


class OrderRef(_M):
    order_id: int


class ShotLine(_M):
    """One ``OrderShot`` row. ``exposure``: seconds; ``quantity``: frames wanted."""

    id: int
    position: int
    filter: str
    exposure: float
    quantity: int
    bin: int = 1
    gain: int | None = None
    offset: int | None = None
    shot_guid: str | None = None
    filter_index: int | None = None
    panel_index: int | None = None


class PanelLine(_M):
    """One ``OrderPanel`` row of a mosaic (docs/mosaics.md): ``panel_index`` 0-based, ``name`` like
    ``IC1396 P2-1``, centre ``ra_j2000`` hours / ``dec_j2000`` degrees."""

    panel_index: int
    column: int
    row: int
    name: str
    ra_j2000: float
    dec_j2000: float
    target_guid: str | None = None


class OrderSnapshot(_M):
    """The order as the workflow needs it (``load_order``). The workflow's deadline is ``date_end``,
    else its own start time + ``default_lifetime_days`` (``billing.order_default_lifetime_days``)."""

    order_id: int
    customer_id: int
    plan: str
    status: OrderStatus
    target_name: str
    ra_j2000: float
    dec_j2000: float
    pa: float = 0.0
    priority: int = 0
    c_moon_down: bool = False
    c_hfd_mean_limit: float = 0.0
    c_alt_min: float = 30.0
    c_ha_start: float | None = None
    c_ha_end: float | None = None
    date_start: datetime | None = None
    date_end: datetime | None = None
    repeat: int = 1
    created_at: datetime
    default_lifetime_days: int
    set_guid: str | None = None
    target_guid: str | None = None
    shots: list[ShotLine]
    panels: list[PanelLine] = Field(default_factory=list)
    #: The slug of the order's telescope, and in network mode its site worker's task queue
    #: ``site-<slug>`` where every Voyager activity of the order runs; None = the workflow's own
    #: queue (the single-telescope shape, docs/network.md). Read once, so replay-safe.
    telescope: str = ""
    site_queue: str | None = None


class SiteWait(_M):
    """The order waits for its telescope's site worker (``waiting for site <slug> since …``)."""

    order_id: int
    telescope: str


class StatusChange(_M):
    """A non-final status change: updates ``Order.status`` and inserts a ``status`` OrderEvent."""

    order_id: int
    status: OrderStatus
    reason: str = ""


class StatusChanged(_M):
    order_id: int
    status: OrderStatus
    changed: bool


class GuidAssignment(_M):
    """GUIDs proposed by the workflow (``workflow.uuid4()``) or already stored on the order.
    ``shot_guids``: OrderShot id (as str, JSON keys) → shot GUID. ``panel_target_guids``: a
    mosaic's panel index (as str) → its Target GUID (panel 0's is ``target_guid``)."""

    order_id: int
    set_guid: str
    target_guid: str
    shot_guids: dict[str, str]
    panel_target_guids: dict[str, str] = Field(default_factory=dict)


class AbortRecord(_M):
    """The abort that took effect, for ``Order.aborted_by`` / ``abort_reason`` / ``abort_role``
    (``role`` None: recorded before the field; :func:`abort_role` reads it)."""

    order_id: int
    requested_by: str
    reason: str
    role: AbortRole | None = None


class Done(_M):
    """Empty acknowledgement of an activity that only has effects."""

    ok: bool = True


class FinalizeRequest(_M):
    """Final status, report and notification (``finalize_order``)."""

    order_id: int
    status: OrderStatus
    reason: str = ""


class FilterReport(_M):
    """One filter's line of ``Order.report``: accepted frames, integration minutes, mean HFD (px)."""

    filter: str
    frames: int
    frames_rejected: int = 0
    integration_minutes: float
    mean_hfd: float | None = None


class PanelReport(_M):
    """One mosaic panel's part of ``Order.report``: its accepted frames and integration, per filter."""

    panel_index: int
    name: str
    column: int
    row: int
    ra_j2000: float
    dec_j2000: float
    filters: list[FilterReport]
    frames_accepted: int
    integration_minutes: float


class OrderReport(_M):
    """``Order.report`` (JSON) and the final notification's payload."""

    order_id: int
    status: OrderStatus
    reason: str = ""
    target_name: str
    filters: list[FilterReport]
    frames_accepted: int
    integration_minutes: float
    requested_integration_minutes: float
    mean_hfd: float | None = None
    sessions: int
    cost: int
    credits_held: int
    credits_captured: int
    credits_released: int = _released("credits_released", "credits_refunded")
    aborted_by: str | None = None
    abort_reason: str | None = None
    jpg_dir: str = Field(default="", description="where the frames' files are: the image store's "
                         "frames/<order_id>/ (docs/frames.md); a directory for reports written before it")
    fits_paths: list[str] = Field(default_factory=list)
    panels: list[PanelReport] = Field(default_factory=list)




# --------------------------------------------------------------------------- ledger activities


class TargetConstraints(_M):
    """Voyager target fields after the plan's gate (``billing.plans.gate``; docs/voyager-protocol.md §8).

    ``alt_min`` degrees; ``ha_start``/``ha_end`` hours (0 and no D/E mask letter = no window);
    ``hfd_mean_limit`` px (0 = none); ``repeat``: runs of the shot list, one per night, when
    ``is_repeat``.
    """

    priority: int
    moon_down: bool
    hfd_mean_limit: float = 0.0
    is_repeat: bool = False
    repeat: int = 1
    c_mask: str = "BDE"
    alt_min: float = 30.0
    ha_start: float = 0.0
    ha_end: float = 0.0
    date_start: datetime | None = None
    date_end: datetime | None = None


class HoldRequest(OrderRef):
    """``price_and_hold``'s argument: the order, and what the same transaction as the held credits
    also stores (one step fewer each, docs/order-workflow.md, Life cycle 1–2): ``guids``, the
    Set/Target/Shot GUIDs the workflow proposes (``assign_guids``' rule: kept where the order
    already has some); ``held``: move the order to ``held`` (once, only from ``pending``).
    An ``OrderRef`` (workflows started before these fields) stores neither."""

    guids: GuidAssignment | None = None
    held: bool = False


class HoldResult(_M):
    """``price_and_hold``: the price (credits) held for the order and the gated constraints;
    ``guids``: the GUIDs in force when the request proposed some (else None).

    Raises (as non-retryable ApplicationError): ``InsufficientCredits`` (details: a
    :class:`Shortfall`), ``PlanViolation`` (details: ``{field: reason}``).
    """

    order_id: int
    cost: int
    credits_held: int
    constraints: TargetConstraints
    guids: GuidAssignment | None = None


class Shortfall(_M):
    """Details of an ``InsufficientCredits`` failure: credits needed, available, missing."""

    needed: int
    available: int
    shortfall: int


class SettleRequest(_M):
    """Resolve the order's hold with ``billing.settlement`` for ``outcome`` (``release``: void it
    whatever the policy says — the order never reached Voyager)."""

    order_id: int
    outcome: SettlementOutcome
    reason: str = ""
    release: bool = False


class SettleResult(_M):
    """Credits captured and released when the hold was resolved; ``requested_seconds``
    and ``accepted_seconds`` are the integration the settlement policy saw."""

    order_id: int
    held: int
    captured: int
    released: int = _released("released", "refunded")
    requested_seconds: float
    accepted_seconds: float


class CloseOrderRequest(SettleRequest):
    """``settle_and_finalize``: settle the hold as :class:`SettleRequest` says, then write the final
    ``status`` with ``reason`` and the report (``finalize_order``), in one activity; each part is
    exactly-once on a retry."""

    status: OrderStatus


class ClosedOrder(_M):
    """What ``settle_and_finalize`` did: the hold's resolution and the final report."""

    settled: SettleResult
    report: OrderReport


# --------------------------------------------------------------------------- Voyager activities


class SubmitShot(_M):
    guid: str
    filter: str
    exposure: float
    quantity: int
    bin: int = 1
    gain: int = 0
    offset: int = 0
    order: int = 1


class SubmitPanel(_M):
    """One mosaic panel to submit: its own Target (centre ``ra_j2000`` hours / ``dec_j2000``
    degrees) and Shots. A request with panels submits these Targets instead of the top-level one."""

    target_guid: str
    target_name: str
    ra_j2000: float
    dec_j2000: float
    shots: list[SubmitShot]


class SubmitRequest(_M):
    """Everything ``submit_target`` sends: the customer's Set, the Target, its Shots (Voyager
    protocol, docs/voyager-protocol.md §7–§8). GUIDs were stored on the order before this activity runs."""

    order_id: int
    customer_id: int
    set_guid: str
    set_tag: str
    set_name: str
    target_guid: str
    target_name: str
    ra_j2000: float
    dec_j2000: float
    pa: float = 0.0
    constraints: TargetConstraints
    shots: list[SubmitShot]
    panels: list[SubmitPanel] = Field(default_factory=list)
    #: Once everything is in Voyager, move the order from ``held`` to ``submitted`` (one step fewer;
    #: False: the workflow writes it, as before this field).
    mark_submitted: bool = False


class SubmitResult(_M):
    """``created``: objects added by this attempt (an earlier, timed-out attempt may have added the
    rest); ``filter_indexes``: shot GUID → FilterIndex used."""

    target_guid: str
    set_created: bool
    target_created: bool
    shots_created: int
    filter_indexes: dict[str, int]


class StopTargetRequest(_M):
    """Abort the target's running session (``RemoteRoboTargetAbort``) and/or disable it
    (``RemoteRoboTargetEnableDisableObject``). Unknown GUIDs are not an error."""

    order_id: int
    target_guid: str
    abort: bool = True
    disable: bool = True
    panel_target_guids: list[str] = Field(default_factory=list)  # a mosaic's other panels, stopped too


class StopTargetResult(_M):
    aborted: bool
    disabled: bool
    detail: str = ""


# --------------------------------------------------------------------------- session ingest


class WatchSessionRequest(_M):
    """Watch one session until it ends, ingesting each new frame (``watch_session``).
    ``sweep_only``: the session already ended — ingest what it produced and return.

    The night's two status changes are written by the watch itself, not as workflow steps (two
    history events and two billable actions a night fewer, docs/order-workflow.md):
    ``running_reason``: set the order ``running`` with this reason as the watch starts (empty:
    leave it); ``waiting_reason``: when the session ends with shots left, set it back to
    ``submitted`` with ``"<waiting_reason> (<exit text>)"`` (empty: leave it). Either only moves an
    order that is ``submitted`` or ``running``: a watch finishing after an abort never undoes it."""

    order_id: int
    target_guid: str
    session_guid: str
    run_guid: str
    sweep_only: bool = False
    running_reason: str = ""
    waiting_reason: str = ""


class OrderProgress(_M):
    """``Order`` progress columns after an ingest. ``all_done``: every shot line has its accepted
    frames; ``integration_seconds``: accepted exposure."""

    order_id: int
    shots_total: int
    shots_done: int
    frames_accepted: int
    frames_rejected: int
    integration_seconds: float
    requested_integration_seconds: float
    mean_hfd: float | None = None
    all_done: bool


class WatchSessionResult(_M):
    """``result``: the session's Voyager result (0 still running — only when ``ended`` is False)."""

    session_guid: str
    ended: bool
    result: int
    exit_text: str = ""
    frames_ingested: int
    progress: OrderProgress


class SweepRequest(_M):
    """Ingest every session of a target (after an abort or at the deadline), first waiting up to
    ``orders.sweep_wait_for_end`` seconds for a session still running (an aborted one finishing its
    exposure). ``panel_target_guids``: a mosaic's other panels, swept too."""

    order_id: int
    target_guid: str
    panel_target_guids: list[str] = Field(default_factory=list)


class SweepResult(_M):
    sessions: list[str]
    frames_ingested: int
    progress: OrderProgress


class CloseTargetRequest(_M):
    """``close_target``: the order leaves Voyager in one activity — write ``settling`` with
    ``reason`` (and ``abort``'s record, the first one only), then stop the target as
    :class:`StopTargetRequest` (``abort_session``: abort its running session too; it is always
    disabled), then, with ``sweep``, ingest every session of it as :class:`SweepRequest`. Each part
    is idempotent, so a retry after a crash between parts repeats nothing that counts."""

    order_id: int
    target_guid: str
    panel_target_guids: list[str] = Field(default_factory=list)
    reason: str = ""
    abort: AbortRecord | None = None
    abort_session: bool = True
    sweep: bool = True


class CloseTargetResult(_M):
    """The stop's outcome and, when swept, the sweep's."""

    stopped: StopTargetResult
    swept: SweepResult | None = None


class RunEndRequest(_M):
    """Wait until Voyager closes the scheduler run ``run_guid`` (one night: closed at dawn)."""

    order_id: int
    run_guid: str


class RunEndResult(_M):
    """``end``: when Voyager closed the run (None when the run is no longer listed)."""

    run_guid: str
    end: datetime | None = None


# --------------------------------------------------------------------------- observatory monitor


class MonitorInput(_M):
    """``ObservatoryMonitorWorkflow`` argument (id ``observatory-monitor-<telescope>``)."""

    telescope: str
    iterations: int = 0  # completed watch activities, carried over continue-as-new
    #: ``site-<telescope>`` in network mode (its watch runs on that site worker); None = the
    #: workflow's own queue (the single-telescope shape, docs/network.md).
    site_queue: str | None = None


class MonitorWatchRequest(_M):
    telescope: str


class MonitorWatchResult(_M):
    """One watch activity's tally (it returns after ``orders.monitor_run_for`` seconds)."""

    polls: int
    signals_sent: int
    sessions_seen: int
