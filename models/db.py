"""SQLModel tables (PostgreSQL). Schema changes go through Alembic (``migrations/``).

Units: credits are integers, money is integer cents, times are timezone-aware UTC
(``TIMESTAMP WITH TIME ZONE``), exposures and integration are seconds.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _ts(nullable: bool = False, **kw: Any) -> Any:
    """A timezone-aware timestamp column."""
    if nullable:
        return Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=True, **kw))
    return Field(default_factory=utcnow, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False, **kw))


def _json(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=sa.Column(JSONB, nullable=nullable))


# --- customers and access -------------------------------------------------------------------


class Customer(SQLModel, table=True):
    """A customer (or a staff member: support/admin keys belong to a customer row too)."""

    __tablename__ = "customer"
    id: Optional[int] = Field(default=None, primary_key=True)
    email: str = Field(sa_column=sa.Column(sa.String(320), nullable=False, unique=True))
    name: str = Field(default="", max_length=200)
    stripe_customer_id: Optional[str] = Field(default=None, sa_column=sa.Column(sa.String(255), unique=True))
    #: A telescope host's Stripe Connect account (``acct_…``): payouts go there when Stripe is on.
    stripe_connect_account_id: Optional[str] = Field(default=None, max_length=255)
    created_at: datetime = _ts()


class ApiKey(SQLModel, table=True):
    """A bearer API key, stored as a SHA-256 hash; the clear key is shown once."""

    __tablename__ = "api_key"
    id: Optional[int] = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    prefix: str = Field(max_length=16, description="first characters, for display")
    key_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    role: str = Field(max_length=16, description="customer | support | admin")
    created_at: datetime = _ts()
    revoked_at: Optional[datetime] = _ts(nullable=True)


class Subscription(SQLModel, table=True):
    """A customer's plan subscription (docs/payments.md, docs/pricing.md §7)."""

    __tablename__ = "subscription"
    id: Optional[int] = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    plan: str = Field(max_length=16, description="stardust | nebula | quasar")
    status: str = Field(default="incomplete", max_length=24,
                        description="incomplete | active | past_due | cancelled | expired")
    stripe_subscription_id: Optional[str] = Field(default=None, sa_column=sa.Column(sa.String(255), unique=True))
    monthly_credits: int = 0
    price_cents: int = 0
    current_period_start: Optional[datetime] = _ts(nullable=True)
    current_period_end: Optional[datetime] = _ts(nullable=True)
    cancel_at_period_end: bool = False
    pending_plan: Optional[str] = Field(default=None, max_length=16, description="downgrade at period end")
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


# --- credit ledger (two-phase: holds, then settle or release) -------------------------------


class CreditAccount(SQLModel, table=True):
    """Per-customer balances, kept equal to the sums of ledger entries and open holds.

    ``subscription_credits`` and ``pack_credits`` are the available buckets (subscription credits
    expire when a cancelled subscription ends; pack credits never do); ``held`` is reserved by open
    holds and is not available.
    """

    __tablename__ = "credit_account"
    customer_id: int = Field(foreign_key="customer.id", primary_key=True)
    subscription_credits: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"))
    pack_credits: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"))
    held: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"))
    debt: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"),
                      description="credits owed after a refund or dispute took back spent credits")
    updated_at: datetime = _ts()
    __table_args__ = (
        sa.CheckConstraint("subscription_credits >= 0", name="ck_account_subscription_nonneg"),
        sa.CheckConstraint("pack_credits >= 0", name="ck_account_pack_nonneg"),
        sa.CheckConstraint("held >= 0", name="ck_account_held_nonneg"),
        sa.CheckConstraint("debt >= 0", name="ck_account_debt_nonneg"),
    )


class CreditHold(SQLModel, table=True):
    """A pending transfer: credits reserved for one order, resolved exactly once."""

    __tablename__ = "credit_hold"
    id: Optional[int] = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    order_id: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False, unique=True))
    amount: int
    from_subscription: int = 0
    from_pack: int = 0
    status: str = Field(default="open", max_length=16, description="open | captured | released")
    captured: int = 0
    released: int = 0
    created_at: datetime = _ts()
    resolved_at: Optional[datetime] = _ts(nullable=True)
    __table_args__ = (sa.CheckConstraint("captured + released <= amount", name="ck_hold_not_over"),)


class LedgerEntry(SQLModel, table=True):
    """One movement of credits. ``idempotency_key`` makes every operation exactly-once."""

    __tablename__ = "ledger_entry"
    id: Optional[int] = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    kind: str = Field(max_length=32, description="grant | hold | capture | release | expire | adjustment | "
                                                 "clawback | restore | repay")
    bucket: str = Field(default="", max_length=16, description="subscription | pack | debt")
    amount: int = Field(description="signed change of available credits")
    balance_before: int
    balance_after: int
    held_before: int = 0
    held_after: int = 0
    reference_type: str = Field(default="", max_length=32, description="order | invoice | payment | admin")
    reference_id: str = Field(default="", max_length=255)
    idempotency_key: str = Field(sa_column=sa.Column(sa.String(255), nullable=False, unique=True))
    actor: str = Field(default="system", max_length=255)
    reason: str = Field(default="", max_length=1000)
    created_at: datetime = _ts()


# --- orders ----------------------------------------------------------------------------------


class CustomerSet(SQLModel, table=True):
    """A customer's RoboTarget Set (docs/sets.md): the default one (``is_default``, GUID = uuid5 of
    the tag, ``models.customer_sets.default_set_guid``) and those a Quasar customer names.

    The row is the wanted state; ``version`` counts its changes and ``synced_version`` is the last
    one Voyager holds (``CustomerSetWorkflow``). ``deleted_at``: removed by the customer (the row
    stays for the orders that ran in it)."""

    __tablename__ = "customer_set"
    id: Optional[int] = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    guid: str = Field(sa_column=sa.Column(sa.String(36), nullable=False, unique=True))
    name: str = Field(max_length=100)
    tag: str = Field(max_length=64, description="user_<customer id>")
    is_default: bool = False
    paused: bool = False
    idempotency_key: Optional[str] = Field(default=None, max_length=255)
    version: int = 1
    synced_version: int = 0
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    deleted_at: Optional[datetime] = _ts(nullable=True)
    __table_args__ = (
        sa.UniqueConstraint("customer_id", "idempotency_key", name="uq_customer_set_idempotency"),
        # One live name per customer, and one default Set.
        sa.Index("uq_customer_set_name", "customer_id", sa.text("lower(name)"), unique=True,
                 postgresql_where=sa.text("deleted_at IS NULL")),
        sa.Index("uq_customer_set_default", "customer_id", unique=True, postgresql_where=sa.text("is_default")),
    )


# --- telescopes (docs/telescopes.md) ----------------------------------------------------------


class Telescope(SQLModel, table=True):
    """A hosted telescope: its site, optics, filters, Voyager profile, price multiplier and host.

    ``slug`` names it everywhere (orders, ``site-<slug>`` task queue, monitor workflow id);
    ``filters``: ``[{"name": "Ha", "index": 4}, …]`` (Voyager filter indexes);
    ``price_multiplier``: exact decimal applied to the seed price (docs/pricing.md §8);
    ``status``: online | maintenance | retired."""

    __tablename__ = "telescope"
    id: Optional[int] = Field(default=None, primary_key=True)
    slug: str = Field(sa_column=sa.Column(sa.String(40), nullable=False, unique=True))
    name: str = Field(max_length=200)
    site_name: str = Field(max_length=200)
    latitude: float = Field(description="degrees, north positive")
    longitude: float = Field(description="degrees, east positive")
    elevation: float = Field(description="metres")
    time_zone: str = Field(max_length=64, description="IANA name")
    horizon_alt: float = Field(description="degrees: the site's floor")
    aperture_mm: float
    focal_length_mm: float
    sensor_width_px: int
    sensor_height_px: int
    pixel_size_um: float
    filters: list = Field(default_factory=list, sa_column=sa.Column(JSONB, nullable=False))
    voyager_profile: str = Field(max_length=255)
    price_multiplier: Decimal = Field(default=Decimal(1), sa_column=sa.Column(sa.Numeric(8, 4), nullable=False))
    host_customer_id: Optional[int] = Field(default=None, foreign_key="customer.id")
    host_share_percent: int = Field(default=0, description="0–100")
    status: str = Field(default="online", max_length=16)
    last_seen_at: Optional[datetime] = _ts(nullable=True)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    __table_args__ = (
        sa.CheckConstraint("host_share_percent BETWEEN 0 AND 100", name="ck_telescope_host_share"),
        sa.CheckConstraint("price_multiplier > 0", name="ck_telescope_multiplier_positive"),
    )


class Order(SQLModel, table=True):
    """An observation order: one RoboTarget target run as ``OrderWorkflow`` (id ``order-<id>``)."""

    __tablename__ = "order"
    id: Optional[int] = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    idempotency_key: Optional[str] = Field(default=None, max_length=255)
    request_hash: Optional[str] = Field(default=None, max_length=64)
    plan: str = Field(default="stardust", max_length=16)
    status: str = Field(default="pending", max_length=16, index=True)
    status_reason: str = Field(default="", max_length=2000)
    target_name: str = Field(max_length=200)
    ra_j2000: float = Field(description="hours 0–24")
    dec_j2000: float = Field(description="degrees −90…90")
    pa: float = 0.0
    priority: int = 0
    c_moon_down: bool = False
    c_hfd_mean_limit: float = 0.0
    c_alt_min: float = 30.0
    c_ha_start: Optional[float] = None
    c_ha_end: Optional[float] = None
    date_start: Optional[datetime] = _ts(nullable=True)
    date_end: Optional[datetime] = _ts(nullable=True)
    repeat: int = 1
    cost: int = 0
    credits_held: int = 0
    credits_captured: int = 0
    credits_released: int = 0
    workflow_id: Optional[str] = Field(default=None, max_length=255)
    set_guid: Optional[str] = Field(default=None, max_length=36)
    set_id: Optional[int] = Field(default=None, foreign_key="customer_set.id", index=True,
                                  description="None: the customer's default Set")
    target_guid: Optional[str] = Field(default=None, max_length=36, index=True)
    shots_total: int = 0
    shots_done: int = 0
    frames_accepted: int = 0
    requested_integration_seconds: float = 0.0
    integration_seconds: float = 0.0
    mean_hfd: Optional[float] = None
    report: Optional[dict] = _json()
    aborted_by: Optional[str] = Field(default=None, max_length=255)
    abort_reason: Optional[str] = Field(default=None, max_length=2000)
    abort_role: Optional[str] = Field(default=None, max_length=16,
                                      description="customer | support: the kind of the abort that took effect")
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    finished_at: Optional[datetime] = _ts(nullable=True)
    # Retention (docs/operations.md §Retention): when the customer was told its frames' files will be
    # deleted, and when they were.
    retention_notice_at: Optional[datetime] = _ts(nullable=True)
    frames_expired_at: Optional[datetime] = _ts(nullable=True)
    # The telescope that runs it (docs/telescopes.md): chosen at creation and kept; its price
    # multiplier is copied so a later change of the telescope's never changes this order's price.
    telescope_id: Optional[int] = Field(default=None, foreign_key="telescope.id", index=True)
    price_multiplier: Decimal = Field(
        default=Decimal(1), sa_column=sa.Column(sa.Numeric(8, 4), nullable=False, server_default="1"))
    assignment_reason: str = Field(default="", max_length=2000)
    #: A mosaic order's layout (docs/mosaics.md): ``{columns, rows, overlap_percent, rotation_deg,
    #: field_of_view: {width_deg, height_deg}}``; null for a single-field order.
    mosaic: Optional[dict] = _json()
    __table_args__ = (sa.UniqueConstraint("customer_id", "idempotency_key", name="uq_order_idempotency"),)


class OrderShot(SQLModel, table=True):
    """One filter × exposure × count line of an order (a RoboTarget Shot)."""

    __tablename__ = "order_shot"
    id: Optional[int] = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="order.id", index=True)
    position: int = 0
    filter: str = Field(max_length=16)
    filter_index: Optional[int] = None
    exposure: float = Field(description="seconds")
    quantity: int
    bin: int = 1
    gain: Optional[int] = None
    offset: Optional[int] = None
    shot_guid: Optional[str] = Field(default=None, max_length=36)
    done: int = 0
    accepted: int = 0
    #: The mosaic panel (``order_panel.panel_index``) this line is imaged on; null outside mosaics.
    panel_index: Optional[int] = None


class OrderPanel(SQLModel, table=True):
    """One panel of a mosaic order: its own RoboTarget Target in the customer's Set
    (docs/mosaics.md). ``panel_index`` 0-based row by row; ``column``/``row`` 1-based; centre
    ``ra_j2000`` hours / ``dec_j2000`` degrees; ``target_guid`` once the workflow assigned it."""

    __tablename__ = "order_panel"
    id: Optional[int] = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="order.id", index=True)
    panel_index: int
    column: int
    row: int
    name: str = Field(max_length=220)
    ra_j2000: float = Field(description="hours 0–24")
    dec_j2000: float = Field(description="degrees −90…90")
    target_guid: Optional[str] = Field(default=None, max_length=36, index=True)
    __table_args__ = (sa.UniqueConstraint("order_id", "panel_index", name="uq_order_panel_index"),)


class VoyagerSession(SQLModel, table=True):
    """One RoboTarget session (one sequence run on the order's target inside a scheduler run)."""

    __tablename__ = "voyager_session"
    id: Optional[int] = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="order.id", index=True)
    session_guid: str = Field(sa_column=sa.Column(sa.String(36), nullable=False, unique=True))
    run_guid: Optional[str] = Field(default=None, max_length=36)
    target_guid: str = Field(max_length=36)
    started_at: Optional[datetime] = _ts(nullable=True)
    ended_at: Optional[datetime] = _ts(nullable=True)
    result: int = Field(default=0, description="0 running, 1 OK, 2 aborted, 3 error")
    exit_text: str = Field(default="", max_length=2000)
    progress: float = 0.0


class ShotDone(SQLModel, table=True):
    """One acquired frame (RoboTarget shot done), ingested exactly once by its GUID."""

    __tablename__ = "shot_done"
    id: Optional[int] = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="order.id", index=True)
    session_guid: str = Field(max_length=36, index=True)
    shot_done_guid: str = Field(sa_column=sa.Column(sa.String(36), nullable=False, unique=True))
    shot_guid: Optional[str] = Field(default=None, max_length=36)
    filter: str = Field(default="", max_length=16)
    exposure: float = Field(default=0.0, description="seconds")
    bin: int = 1
    hfd: Optional[float] = Field(default=None, description="px")
    star_index: Optional[float] = None
    adu_min: Optional[float] = None
    adu_max: Optional[float] = None
    adu_mean: Optional[float] = None
    filename: str = Field(default="", max_length=500)
    fits_path: Optional[str] = Field(default=None, max_length=1000)
    jpg_path: Optional[str] = Field(default=None, max_length=1000)
    #: The frame's files in the image store (docs/frames.md): keys and hex SHA-256 of the content.
    #: Set when the row is inserted, which is only after both uploads; empty on frames ingested
    #: before the store (they keep ``fits_path``/``jpg_path``) and for a FITS Voyager deleted.
    fits_key: Optional[str] = Field(default=None, max_length=300)
    fits_sha256: Optional[str] = Field(default=None, max_length=64)
    jpg_key: Optional[str] = Field(default=None, max_length=300)
    jpg_sha256: Optional[str] = Field(default=None, max_length=64)
    taken_at: Optional[datetime] = _ts(nullable=True)
    is_deleted: bool = False
    accepted: bool = False
    ingested_at: datetime = _ts()
    #: When retention deleted the FITS and JPG; the row (time, filter, HFD, billing) stays.
    expired_at: Optional[datetime] = _ts(nullable=True)


class OrderEvent(SQLModel, table=True):
    """Notification record: feeds the live stream (SSE, ``Last-Event-ID`` = id) and the e-mail outbox.

    Inserting one also sends ``NOTIFY order_events, '<order_id>:<id>'`` (trigger in the migration).
    """

    __tablename__ = "order_event"
    # The mail sender's scan for events whose e-mail is still to be composed (docs/mail.md).
    __table_args__ = (sa.Index("ix_order_event_email_pending", "id", postgresql_where=sa.text("email_status = 'pending'")),)
    id: Optional[int] = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="order.id", index=True)
    kind: str = Field(max_length=16, description="status | progress | report | retention")
    payload: Optional[dict] = _json()
    email_status: str = Field(default="none", max_length=16, description="none | pending | queued (in mail_message) | sent")
    created_at: datetime = _ts()


# --- Stripe --------------------------------------------------------------------------------


class Payment(SQLModel, table=True):
    """A credit-pack purchase (docs/payments.md: pending → completed)."""

    __tablename__ = "payment"
    id: Optional[int] = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    pack_id: str = Field(max_length=32)
    credits: int
    bonus_credits: int = 0
    amount_cents: int
    currency: str = Field(default="eur", max_length=3)
    status: str = Field(default="pending", max_length=16, description="pending | completed | cancelled | failed")
    stripe_payment_intent_id: Optional[str] = Field(default=None, sa_column=sa.Column(sa.String(255), unique=True))
    created_at: datetime = _ts()
    completed_at: Optional[datetime] = _ts(nullable=True)


class StripeEvent(SQLModel, table=True):
    """A processed Stripe event id: each event's effect is applied at most once."""

    __tablename__ = "stripe_event"
    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=100)
    processed_at: datetime = _ts()


class PaymentReversal(SQLModel, table=True):
    """What Stripe took back of one paid charge (refunds, disputes) and what the ledger clawed back.

    One row per charge that was ever refunded or disputed. ``grant_key`` is the ledger key of the
    grant that charge paid for (``payment:<id>`` or ``invoice:<id>``); ``refunded_cents`` is
    Stripe's cumulative ``amount_refunded`` (the largest seen); ``clawed_back`` is the credits
    currently taken back (billing/reversals.py keeps it equal to the target).
    """

    __tablename__ = "payment_reversal"
    id: Optional[int] = Field(default=None, primary_key=True)
    charge_id: str = Field(sa_column=sa.Column(sa.String(255), nullable=False, unique=True))
    customer_id: int = Field(foreign_key="customer.id", index=True)
    grant_key: str = Field(max_length=255, description="payment:<id> | invoice:<id>")
    bucket: str = Field(max_length=16, description="subscription | pack")
    granted_credits: int = 0
    charge_amount_cents: int = 0
    refunded_cents: int = 0
    clawed_back: int = Field(default=0, description="credits currently taken back")
    moves: int = Field(default=0, description="ledger movements made so far (numbers their keys)")
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class InvoicePayment(SQLModel, table=True):
    """Which PaymentIntent paid which subscription invoice, recorded when the invoice is granted:
    a dispute names only its charge and PaymentIntent, and this ties it to the invoice's grant."""

    __tablename__ = "invoice_payment"
    payment_intent_id: str = Field(primary_key=True, max_length=255)
    invoice_id: str = Field(max_length=255, index=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    amount_cents: int = Field(default=0, description="the invoice's amount paid")
    created_at: datetime = _ts()


class PaymentDispute(SQLModel, table=True):
    """A Stripe dispute (chargeback) of a charge. ``status``: Stripe's (needs_response, under_review,
    won, lost, warning_*); a closed status never goes back to open."""

    __tablename__ = "payment_dispute"
    id: str = Field(primary_key=True, max_length=255, description="Stripe dispute id (dp_…)")
    charge_id: str = Field(max_length=255, index=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    amount_cents: int = 0
    status: str = Field(max_length=32)
    reason: str = Field(default="", max_length=64)
    created_at: datetime = _ts()
    closed_at: Optional[datetime] = _ts(nullable=True)
# --- production guards -----------------------------------------------------------------------


class RateLimitCounter(SQLModel, table=True):
    """Requests of one limiter key in one fixed window, shared by every API process
    (``api/rate_limits.py``). Rows of past windows are deleted as the limiter goes."""

    __tablename__ = "rate_limit_counter"
    key: str = Field(sa_column=sa.Column(sa.String(128), primary_key=True))
    window_start: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True, autoincrement=False),
                              description="epoch seconds")
    hits: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))


class ObservatoryStatus(SQLModel, table=True):
    """Voyager as last seen by the telescope's observatory monitor (``GET /health/ready`` reads it,
    so a health probe never opens a connection to the telescope PC)."""

    __tablename__ = "observatory_status"
    telescope: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    ok: bool = Field(description="the last poll answered")
    detail: str = Field(default="", sa_column=sa.Column(sa.String(500), nullable=False))
    checked_at: datetime = _ts()
    last_ok_at: Optional[datetime] = _ts(nullable=True)
# --- web app sign-in ---------------------------------------------------------------------------


class WebLogin(SQLModel, table=True):
    """E-mail + password sign-in of a customer in the web app (API keys stay for programs).

    ``password_hash``: an argon2id PHC string (``$argon2id$v=19$…``), never the password.
    """

    __tablename__ = "web_login"
    customer_id: int = Field(sa_column=sa.Column(sa.Integer, sa.ForeignKey("customer.id"), primary_key=True))
    password_hash: str = Field(max_length=255)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


# --- e-mail outbox ------------------------------------------------------------------------------


class MailMessage(SQLModel, table=True):
    """One e-mail in the outbox, delivered over SMTP by ``mail/sender.py`` (docs/mail.md).

    ``source_key`` makes putting a message in the outbox idempotent (``order_event:<id>``,
    ``password_reset:<customer>:<nonce>``); ``message_id`` is the RFC 5322 ``Message-ID``, fixed at
    insert, so a resend after a crash carries the same id. ``lease_until``: a sender claimed it
    (database clock); ``status`` pending → sent | failed.
    """

    __tablename__ = "mail_message"
    # The sender's claim scans pending messages by due time; sent ones are the bulk and stay out.
    __table_args__ = (sa.Index("ix_mail_message_due", "next_attempt_at", postgresql_where=sa.text("status = 'pending'")),)
    id: Optional[int] = Field(default=None, primary_key=True)
    source_key: str = Field(sa_column=sa.Column(sa.String(255), nullable=False, unique=True))
    message_id: str = Field(sa_column=sa.Column(sa.String(255), nullable=False, unique=True))
    customer_id: Optional[int] = Field(default=None, foreign_key="customer.id", index=True)
    order_event_id: Optional[int] = Field(default=None, foreign_key="order_event.id")
    to_address: str = Field(max_length=320)
    subject: str = Field(max_length=500)
    body: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    status: str = Field(default="pending", max_length=16, description="pending | sent | failed")
    attempts: int = 0
    next_attempt_at: datetime = _ts()
    lease_until: Optional[datetime] = _ts(nullable=True)
    lease_owner: Optional[str] = Field(default=None, max_length=64)
    last_error: str = Field(default="", max_length=1000)
    created_at: datetime = _ts()
    sent_at: Optional[datetime] = _ts(nullable=True)


class MailCursor(SQLModel, table=True):
    """How far the mail sender has read an append-only table (``ledger``: ``ledger_entry.id``) for
    the e-mails it derives from it: payment received, credits low (``mail/ledger_notices.py``)."""

    __tablename__ = "mail_cursor"
    name: str = Field(primary_key=True, max_length=32)
    last_id: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"))
    updated_at: datetime = _ts()


# --- host earnings (docs/host-earnings.md) -----------------------------------------------------


class CreditGrant(SQLModel, table=True):
    """A lot of credits with its money value: one per grant (pack payment, subscription invoice,
    support adjustment), consumed oldest first by captures (docs/host-earnings.md §1).

    Per-credit value is the rational ``(value_cents − reversed_cents) / credits``; ``reversed_cents``
    is the part of the payment a refund or lost dispute took back. ``consumed``: credits captured
    from it; ``gone``: credits that left otherwise (expired, clawed back, adjusted away). A lot with
    no ledger entry (``source`` unattributed) holds credits of no known grant, worth 0."""

    __tablename__ = "credit_grant"
    __table_args__ = (
        sa.CheckConstraint("credits > 0", name="ck_grant_credits_positive"),
        sa.CheckConstraint("value_cents >= 0 AND reversed_cents BETWEEN 0 AND value_cents", name="ck_grant_value"),
        sa.CheckConstraint("consumed >= 0 AND gone >= 0 AND consumed + gone <= credits", name="ck_grant_not_over"),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    ledger_entry_id: Optional[int] = Field(default=None, foreign_key="ledger_entry.id", unique=True)
    grant_key: str = Field(sa_column=sa.Column(sa.String(255), nullable=False, unique=True))
    bucket: str = Field(max_length=16, description="subscription | pack")
    source: str = Field(max_length=16, description="pack | subscription | support | promotion | unattributed")
    credits: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    value_cents: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    reversed_cents: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"))
    consumed: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"))
    gone: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"))
    created_at: datetime = _ts()


class CaptureAllocation(SQLModel, table=True):
    """Which lots an order's captured credits came from (written in the capture transaction)."""

    __tablename__ = "capture_allocation"
    __table_args__ = (sa.UniqueConstraint("order_id", "grant_id", name="uq_capture_allocation"),
                      sa.CheckConstraint("credits > 0", name="ck_allocation_positive"))
    id: Optional[int] = Field(default=None, primary_key=True)
    order_id: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False, index=True))
    grant_id: int = Field(foreign_key="credit_grant.id", index=True)
    credits: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    created_at: datetime = _ts()


class HostPayout(SQLModel, table=True):
    """Money paid to a host: a Stripe Connect transfer or an external one (bank transfer id)."""

    __tablename__ = "host_payout"
    __table_args__ = (sa.CheckConstraint("amount_cents > 0", name="ck_payout_positive"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    host_customer_id: int = Field(foreign_key="customer.id", index=True)
    amount_cents: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    method: str = Field(max_length=16, description="stripe_connect | external")
    reference: str = Field(max_length=255, description="the Stripe transfer id or the bank transfer id")
    idempotency_key: str = Field(sa_column=sa.Column(sa.String(255), nullable=False, unique=True))
    actor: str = Field(default="", max_length=255)
    created_at: datetime = _ts()


class HostEarningEntry(SQLModel, table=True):
    """One leg of a double-entry host transfer: every ``transfer_key`` has two legs summing to 0,
    ``host:<customer id>`` and ``stellar:host_share`` (earning, reversal) or ``stellar:payouts``
    (payout). A host's due balance is the sum of its account's legs."""

    __tablename__ = "host_earning_entry"
    id: Optional[int] = Field(default=None, primary_key=True)
    idempotency_key: str = Field(sa_column=sa.Column(sa.String(255), nullable=False, unique=True))
    transfer_key: str = Field(sa_column=sa.Column(sa.String(255), nullable=False, index=True))
    account: str = Field(max_length=64, description="host:<id> | stellar:host_share | stellar:payouts")
    host_customer_id: int = Field(foreign_key="customer.id", index=True)
    kind: str = Field(max_length=16, description="earning | reversal | payout")
    amount_cents: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False), description="signed")
    order_id: Optional[int] = Field(default=None, sa_column=sa.Column(sa.BigInteger, nullable=True, index=True))
    telescope_id: Optional[int] = Field(default=None, foreign_key="telescope.id")
    customer_id: Optional[int] = Field(default=None, foreign_key="customer.id")
    share_percent: Optional[int] = None
    payout_id: Optional[int] = Field(default=None, foreign_key="host_payout.id")
    reason: str = Field(default="", max_length=500)
    created_at: datetime = _ts()


class CustomerTelescopeTotal(SQLModel, table=True):
    """A customer's totals on one telescope (first and last capture, credits captured, orders)."""

    __tablename__ = "customer_telescope_total"
    customer_id: int = Field(foreign_key="customer.id", primary_key=True)
    telescope_id: int = Field(foreign_key="telescope.id", primary_key=True)
    first_observation_at: datetime = _ts()
    last_observation_at: datetime = _ts()
    credits_captured: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"))
    orders: int = 0


class HostCustomerAlias(SQLModel, table=True):
    """The stable pseudonymous id under which a host sees one customer (random, never the e-mail)."""

    __tablename__ = "host_customer_alias"
    host_customer_id: int = Field(foreign_key="customer.id", primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", primary_key=True)
    alias: str = Field(sa_column=sa.Column(sa.String(32), nullable=False, unique=True))
