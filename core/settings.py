"""Stellar settings: one pydantic-settings object, env prefix ``STELLAR_``, nested with ``__``.

Examples: ``STELLAR_DATABASE__URL``, ``STELLAR_VOYAGER__MAC_WORDS``, ``STELLAR_SITE__LATITUDE``.
Every variable is documented in ``.env.example``. Built lazily by :func:`get_settings`, never at
import time, so a bad value fails at start with the variable's name (see :func:`load_settings`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

STATE_DIR = Path(".stellar")


class DatabaseSettings(BaseModel):
    """PostgreSQL. ``url`` empty → ``stellar dev`` starts the embedded server on ``embedded_port``."""

    url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL, postgresql+asyncpg://user:pass@host:port/db; empty = embedded",
    )
    embedded_port: int = Field(default=55432, ge=1, le=65535)
    embedded_data_dir: Path = STATE_DIR / "postgres"
    pool_size: int = Field(default=10, ge=1)

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if not v.startswith(("postgresql+asyncpg://", "postgresql://", "postgres://")):
            raise ValueError("must be a PostgreSQL URL: postgresql+asyncpg://user:password@host:port/database")
        if v.startswith("postgres://"):
            v = "postgresql://" + v[len("postgres://") :]
        if v.startswith("postgresql://"):
            v = "postgresql+asyncpg://" + v[len("postgresql://") :]
        return v

    def embedded_url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.embedded_port}/stellar"

    def effective_url(self) -> str:
        """The configured URL, or the embedded server's."""
        return self.url or self.embedded_url()


class TemporalSettings(BaseModel):
    """Temporal. ``address`` empty → ``stellar dev`` starts ``temporal server start-dev``."""

    address: str | None = Field(default=None, description="host:port of the Temporal frontend; empty = embedded")
    namespace: str = "default"
    task_queue: str = "stellar-orders"
    embedded_port: int = Field(default=7233, ge=1, le=65535)
    ui_port: int = Field(default=8233, ge=1, le=65535)
    embedded_db_file: Path = STATE_DIR / "temporal.sqlite"
    ui_url: str = Field(default="http://127.0.0.1:8233", description="base URL of the Temporal Web UI for links")
    # mTLS to a remote Temporal (docs/network.md §3): a site worker dials out, nothing dials in.
    tls_client_cert: Path | None = Field(default=None, description="PEM client certificate; set = connect with TLS")
    tls_client_key: Path | None = Field(default=None, description="PEM private key of the client certificate")
    tls_server_ca: Path | None = Field(default=None, description="PEM CA that signed the server's certificate; empty = system roots")
    tls_server_name: str | None = Field(default=None, description="server name to verify; empty = the address's host")

    def uses_tls(self) -> bool:
        return bool(self.tls_client_cert or self.tls_server_ca)

    def effective_address(self) -> str:
        return self.address or f"127.0.0.1:{self.embedded_port}"


class VoyagerSettings(BaseModel):
    """Voyager Application Server (docs/voyager-protocol.md §1–§5) and the embedded simulator.

    ``host`` empty → ``stellar dev`` starts the simulator on ``port``.
    """

    host: str | None = Field(default=None, description="Voyager host; empty = embedded simulator on 127.0.0.1")
    port: int = Field(default=5950, ge=1, le=65535)
    username: str | None = None
    password: SecretStr = SecretStr("")
    mac_key: SecretStr = SecretStr("")
    mac_words: SecretStr = Field(default=SecretStr(""), description="the four licence MAC words, comma separated")
    profile_name: str = Field(default="Stellar.v2y", description="Voyager profile (*.v2y) the sets belong to")
    base_sequence_guid: str = Field(default="", description="RefGuidBaseSequence for new targets")
    pool_size: int = Field(default=4, ge=1, le=64)
    connect_timeout: float = Field(default=5.0, gt=0, description="seconds")
    command_timeout: float = Field(default=30.0, gt=0, description="seconds to wait for a reply/result")
    pool_acquire_timeout: float = Field(default=10.0, gt=0, description="seconds to wait for a free connection")
    # Simulator only.
    sim_speed: float = Field(default=3600.0, gt=0, description="simulated seconds per real second")
    sim_state_file: Path = STATE_DIR / "voyager-sim.json"
    sim_fit_dir: Path = STATE_DIR / "fits"
    sim_start_time: str | None = Field(default=None, description="ISO UTC start of the simulated clock; empty = now")
    sim_seeing_arcsec: float = Field(default=2.2, gt=0)
    sim_cloud_probability: float = Field(default=0.0, ge=0, le=1)
    sim_seed: int | None = Field(default=None, description="seed of simulated frame quality and clouds; empty = random")
    # Simulator fault injection (voyager/simulator/faults.py).
    sim_fault_reply_delay: float = Field(default=0.0, ge=0, description="seconds added before every reply and result")
    sim_fault_swallow_methods: str = Field(default="", description="methods never answered, comma separated; * = all")
    sim_fault_error_methods: str = Field(default="", description="methods answered with an error result; * = all")
    sim_fault_cloudy_nights: str = Field(default="", description="nights clouded out, YYYY-MM-DD of the evening, comma separated")
    sim_fault_drop_interval: float = Field(default=0.0, ge=0, description="seconds between forced drops of every connection; 0 = never")

    @field_validator("mac_words")
    @classmethod
    def _check_words(cls, v: SecretStr) -> SecretStr:
        raw = v.get_secret_value()
        if raw and len([w for w in raw.split(",")]) != 4:
            raise ValueError("must be exactly four comma-separated MAC words")
        return v

    def mac_word_list(self) -> list[str]:
        raw = self.mac_words.get_secret_value()
        return [w.strip() for w in raw.split(",")] if raw else ["", "", "", ""]

    def effective_host(self) -> str:
        return self.host or "127.0.0.1"


LOCAL_STRIPE_KEY = "sk_test_stellar_local"
LOCAL_WEBHOOK_SECRET = "whsec_stellar_local"
STRIPE_API_BASE = "https://api.stripe.com"


class StripeSettings(BaseModel):
    """Stripe. ``api_base`` empty and no real key → ``stellar dev`` starts localstripe."""

    api_key: SecretStr = Field(default=SecretStr(LOCAL_STRIPE_KEY),
                               description="Stripe secret key; a real one (and no api_base) means api.stripe.com")
    api_base: str | None = Field(
        default=None, description="Stripe API base URL; empty = localstripe with the local key, else api.stripe.com")
    webhook_secret: SecretStr = Field(default=SecretStr(LOCAL_WEBHOOK_SECRET))
    webhook_tolerance: int = Field(default=300, ge=1, description="seconds a signed event stays valid")
    localstripe_port: int = Field(default=8420, ge=1, le=65535)
    currency: str = "eur"
    localstripe_compat: bool | None = Field(
        default=None,
        description="talk to localstripe (Plans, no proration_behavior); empty = when api_base is empty or loopback",
    )
    connect_payouts: bool = Field(
        default=False,
        description="pay telescope hosts by Stripe Connect transfers (real Stripe only: localstripe has no "
                    "/v1/transfers); off = payouts are recorded with an external reference")

    def uses_embedded_localstripe(self) -> bool:
        """Neither an API base nor a real key configured: the stack runs its own localstripe."""
        return self.api_base is None and self.api_key.get_secret_value() == LOCAL_STRIPE_KEY

    def effective_api_base(self) -> str:
        if self.api_base:
            return self.api_base
        if self.uses_embedded_localstripe():
            return f"http://127.0.0.1:{self.localstripe_port}"
        return STRIPE_API_BASE

    def has_real_key(self) -> bool:
        """A key other than the built-in local one that talks to Stripe itself (not localstripe),
        live or test mode."""
        return self.api_key.get_secret_value() != LOCAL_STRIPE_KEY and not self.is_localstripe()

    def is_localstripe(self) -> bool:
        """True when the Stripe API is localstripe (see ``billing/stripe_client.py``)."""
        if self.localstripe_compat is not None:
            return self.localstripe_compat
        base = self.effective_api_base()
        return any(h in base for h in ("://127.0.0.1", "://localhost", "://[::1]"))


class ImageSettings(BaseModel):
    """Frame files on disk. ``fit_dir``: where the ingest reaches the FITS files Voyager writes
    (beside Voyager; docs/frames.md). ``jpg_dir``: previews of frames ingested before the image
    store (today's frames are in ``image_store``); both also serve such older frames' downloads."""

    jpg_dir: Path = STATE_DIR / "jpg"
    fit_dir: Path = STATE_DIR / "fits"


class StorageSettings(BaseModel):
    """The object store that holds backups (``backups/``): a local directory, or S3-compatible.

    ``url`` empty → the local directory ``local_dir``; ``file:///path`` → that directory;
    ``s3://bucket[/prefix]`` → S3 (or any S3-compatible server at ``endpoint``). See
    ``core/object_store.py``.
    """

    url: str = Field(default="", description="s3://bucket[/prefix] or file:///path; empty = the local directory local_dir")
    local_dir: Path = STATE_DIR / "store"
    endpoint: str | None = Field(default=None, description="S3-compatible endpoint URL; empty = AWS")
    region: str = "us-east-1"
    access_key_id: SecretStr = SecretStr("")
    secret_access_key: SecretStr = SecretStr("")
    allow_http: bool = Field(default=False, description="allow a plain-HTTP endpoint (a local S3 server)")
    timeout: float = Field(default=30.0, gt=0, description="seconds per request")


class ImageStoreSettings(StorageSettings):
    """The object store that holds every frame's FITS and JPG (``frames/<order_id>/…``), written by
    the ingest beside Voyager and read by the API wherever it runs (docs/frames.md). Same fields as
    ``storage``; by default a local directory under the state directory."""

    local_dir: Path = STATE_DIR / "frames"


class RetentionSettings(BaseModel):
    """How long an ended order's FITS and JPG are kept, and the notice before they are deleted
    (the platform's promise: images are cleaned up after 30 days). See docs/operations.md."""

    days: int = Field(default=30, ge=1, description="days after the order ended before its frames' files are deleted")
    notice_days: int = Field(default=7, ge=0, description="days before deletion that the customer gets a notice")
    hour_utc: int = Field(default=2, ge=0, le=23, description="hour (UTC) of the daily retention run")


class BackupSettings(BaseModel):
    """PostgreSQL base backups and continuous WAL archiving (``stellar backup``; docs/operations.md)."""

    hour_utc: int = Field(default=3, ge=0, le=23, description="hour (UTC) of the daily base backup")
    keep_days: int = Field(default=30, ge=1, description="base backups (and the WAL they need) kept this many days")
    wal_upload_interval: float = Field(default=10.0, gt=0,
                                       description="seconds between uploads of the WAL segment being written (RPO)")
    spool_dir: Path = STATE_DIR / "wal-spool"


class SiteSettings(BaseModel):
    """The observatory site (default: Observatoire de Haute-Provence)."""

    name: str = "OHP"
    latitude: float = Field(default=43.9308, ge=-90, le=90, description="degrees, north positive")
    longitude: float = Field(default=5.7133, ge=-180, le=180, description="degrees, east positive")
    elevation: float = Field(default=650.0, description="metres")
    horizon_alt: float = Field(default=10.0, ge=-10, le=90,
                               description="degrees: nothing is imaged lower, whatever an order's altitude minimum")
    time_zone: str = Field(default="Europe/Paris", description="IANA time zone of the site (local night dates)")


class OpticsSettings(BaseModel):
    """The telescope's optics and camera, from which ``core/optics.py`` derives the field of view
    and the pixel scale (mosaic panels are laid out from the field of view, docs/mosaics.md).
    Seeds the first telescope row of an empty database (docs/telescopes.md); each telescope row
    then carries its own. Defaults: a 530 mm refractor with a 6248 × 4176 px, 3.76 µm sensor
    (1.46″/px, 2.54° × 1.70°)."""

    focal_length_mm: float = Field(default=530.0, gt=0, description="millimetres")
    sensor_width_px: int = Field(default=6248, ge=1, description="pixels")
    sensor_height_px: int = Field(default=4176, ge=1, description="pixels")
    pixel_size_um: float = Field(default=3.76, gt=0, description="micrometres")
    aperture_mm: float = Field(default=106.0, gt=0, description="millimetres (seeds the first telescope only)")


class BillingSettings(BaseModel):
    """Settlement thresholds (billing/settlement.py) and order lifetime."""

    complete_threshold: float = Field(default=0.90, ge=0, le=1, description="accepted fraction counted as complete")
    # The name before the ledger words were fixed still works, so existing deployments keep theirs.
    voyager_failure_release_below: float = Field(
        default=0.50, ge=0, le=1,
        validation_alias=AliasChoices("voyager_failure_release_below", "voyager_failure_refund_below"),
        description="a Voyager failure or expiry delivering less than this fraction releases the whole hold "
                    "(deprecated alias: STELLAR_BILLING__VOYAGER_FAILURE_REFUND_BELOW)")
    order_default_lifetime_days: int = Field(default=30, ge=1)
    pending_payment_ttl_hours: int = Field(default=24, ge=1)


class OrderSettings(BaseModel):
    """The order workflow's observatory monitor and session watch (docs/order-workflow.md).

    One monitor per telescope (= per configured Voyager): workflow id
    ``observatory-monitor-<telescope>``. Intervals are real seconds.
    """

    telescope: str = Field(default="main", description="name of this Voyager's telescope (monitor workflow id)")
    monitor_poll_interval: float = Field(default=5.0, gt=0, description="seconds between run/session list polls")
    monitor_run_for: float = Field(default=3600.0, gt=0, description="seconds one monitor activity runs before continue-as-new")
    monitor_run_days: int = Field(default=2, ge=1, description="Days argument of RemoteRoboTargetGetRunList")
    monitor_catchup_interval: float = Field(
        default=600.0, gt=0,
        description="seconds between two catch-up passes over every waiting order's whole life (also one at the "
                    "start of every watch activity and after a failed poll)")
    watch_poll_interval: float = Field(
        default=20.0, gt=0,
        description="seconds between shot-done polls during a session when no dashboard event (a frame written, a "
                    "session state change) wakes the watch first: the safety poll for events lost on a dropped link")
    sweep_wait_for_end: float = Field(default=900.0, ge=0, description="seconds to wait for an aborted session to end")
    start_monitor: bool = Field(default=True, description="the worker starts the telescope's monitor workflow")
    site_workers: bool = Field(
        default=False,
        description="network mode (docs/network.md): every Voyager activity runs on its telescope's `stellar "
                    "site-worker` (task queue site-<slug>) and the central worker holds no Voyager link; "
                    "false = the single-telescope shape: the worker drives STELLAR_VOYAGER__* itself")


class RepairSettings(BaseModel):
    """The repair sweep (``stellar repair`` and the ``order-repair`` Temporal Schedule;
    docs/order-workflow.md, "Repair")."""

    every_minutes: int = Field(default=10, ge=0, description="minutes between scheduled repair runs (0 = no schedule)")
    grace_seconds: float = Field(default=120.0, ge=0,
                                 description="orders younger than this are left alone (their workflow may be starting)")
    max_restarts: int = Field(default=3, ge=0, description="workflow restarts of one order before repair settles it")


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    rate_limit_per_minute: int = Field(default=600, ge=1,
                                       description="requests per API key per minute, shared by every API process")
    ip_rate_limit_per_minute: int = Field(default=6000, ge=1,
                                          description="requests per client IP per minute, checked before the key")
    auth_failures_per_minute: int = Field(default=30, ge=1,
                                          description="invalid API keys per client IP per minute; then 429 without a lookup")
    sse_streams_per_key: int = Field(default=5, ge=1, description="concurrent event streams per API key (per process)")
    support_adjust_limit: int = Field(default=100, ge=1,
                                      description="credits; a support adjustment larger in absolute value needs admin")
    voyager_stale_seconds: float = Field(default=120.0, gt=0,
                                         description="seconds after which the monitor's view of Voyager is unknown")
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    public_url: str = "http://127.0.0.1:8000"
    filters: str = Field(default="L,R,G,B,Ha,OIII,SII", description="comma-separated filter names orders may use")
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0, description="SSE comment interval when idle")
    health_timeout_seconds: float = Field(default=2.0, gt=0, description="per-check timeout of GET /health/ready")
    abort_timeout_seconds: float = Field(default=15.0, gt=0, description="wait for the workflow to take an abort")

    def filter_list(self) -> list[str]:
        return [f.strip() for f in self.filters.split(",") if f.strip()]


class MailSettings(BaseModel):
    """Outgoing e-mail (``mail/``): the SMTP server the outbox sender delivers to.

    ``host`` empty: ``stellar dev`` starts a local SMTP sink (aiosmtpd) on ``sink_port`` that keeps
    every message as a file under ``<state_dir>/mail``; a production process refuses an empty host.
    """

    host: str = Field(default="", description="SMTP server; empty = the embedded stack's local sink")
    port: int = Field(default=587, ge=1, le=65535)
    username: str = Field(default="", description="SMTP login; empty = no AUTH")
    password: SecretStr = SecretStr("")
    from_address: str = Field(default="Stellar <noreply@stellar.invalid>", description="the From header")
    starttls: bool = Field(default=True, description="upgrade the connection with STARTTLS before sending")
    timeout_seconds: float = Field(default=30.0, gt=0, description="per SMTP command")
    every_seconds: float = Field(default=5.0, gt=0, description="how often the worker's sender looks at the outbox")
    lease_seconds: int = Field(default=300, ge=10,
                               description="a claimed message is someone else's for this long (then retried)")
    max_attempts: int = Field(default=8, ge=1, description="sending attempts before a message is marked failed")
    retry_base_seconds: float = Field(default=30.0, ge=0,
                                      description="wait after a failed attempt, doubled each time (at most an hour)")
    credits_low_below: int = Field(default=5, ge=0,
                                   description="credits; an e-mail when the available balance falls below (0 = never)")
    ledger_lag_seconds: float = Field(default=30.0, ge=0,
                                      description="ledger lines younger than this wait for the next round "
                                                  "(a line committed late behind a later id is not skipped)")
    sink_port: int = Field(default=8025, ge=1, le=65535, description="the embedded stack's SMTP sink")


class WebSettings(BaseModel):
    """The customer web app (``web/``): session cookie and sign-in throttle."""

    session_secret: SecretStr = Field(
        default=SecretStr(""), description="signs the session cookie; empty = a random one per process (dev)")
    session_max_age_seconds: int = Field(default=14 * 24 * 3600, ge=60, description="session cookie lifetime")
    login_max_failures: int = Field(default=5, ge=1, description="wrong passwords before sign-in is refused")
    login_lockout_seconds: int = Field(default=900, ge=1, description="how long sign-in stays refused")
    payment_flow: str = Field(
        default="", pattern="^(|checkout|card)$",
        description="checkout = Stripe Checkout (production); card = the test card typed on our page (localstripe "
                    "only); empty = card with localstripe, else checkout")
    reset_link_max_age_seconds: int = Field(default=3600, ge=60,
                                            description="how long a password-reset link stays valid")
    reset_requests_per_hour: int = Field(default=3, ge=1,
                                         description="password-reset e-mails per address (and 10× per client IP) per hour")


class Settings(BaseSettings):
    """All of Stellar's configuration. Env prefix ``STELLAR_``, nested delimiter ``__``."""

    model_config = SettingsConfigDict(
        env_prefix="STELLAR_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    env: str = Field(default="dev", description="dev | test | prod")
    log_level: str = "INFO"
    log_json: bool | None = Field(default=None, description="force JSON logs; default: JSON when not a terminal")
    state_dir: Path = STATE_DIR
    database: DatabaseSettings = DatabaseSettings()
    temporal: TemporalSettings = TemporalSettings()
    voyager: VoyagerSettings = VoyagerSettings()
    stripe: StripeSettings = StripeSettings()
    images: ImageSettings = ImageSettings()
    storage: StorageSettings = StorageSettings()
    image_store: ImageStoreSettings = ImageStoreSettings()
    retention: RetentionSettings = RetentionSettings()
    backup: BackupSettings = BackupSettings()
    site: SiteSettings = SiteSettings()
    optics: OpticsSettings = OpticsSettings()
    billing: BillingSettings = BillingSettings()
    api: ApiSettings = ApiSettings()
    orders: OrderSettings = OrderSettings()
    repair: RepairSettings = RepairSettings()
    web: WebSettings = WebSettings()
    mail: MailSettings = MailSettings()


class SettingsError(RuntimeError):
    """A setting is malformed; the message names the environment variable."""


def _env_name(loc: tuple) -> str:
    return "STELLAR_" + "__".join(str(p).upper() for p in loc)


def load_settings(**overrides) -> Settings:
    """Build settings from the environment (and ``.env``). Raises SettingsError naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [f"{_env_name(err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(lines)) from None


#: Built-in development values of secrets: (environment variable, getter, development value).
_DEV_SECRETS = (
    ("STELLAR_STRIPE__API_KEY", lambda s: s.stripe.api_key.get_secret_value(), LOCAL_STRIPE_KEY),
    ("STELLAR_STRIPE__WEBHOOK_SECRET", lambda s: s.stripe.webhook_secret.get_secret_value(), LOCAL_WEBHOOK_SECRET),
)


LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_")


def is_production(settings: Settings) -> bool:
    """``STELLAR_ENV=prod``, or a live Stripe key is configured (real money moves)."""
    key = settings.stripe.api_key.get_secret_value()
    return settings.env.strip().lower() in ("prod", "production") or key.startswith(LIVE_KEY_PREFIXES)


def production_problems(settings: Settings) -> list[str]:
    """What a process must not start with, one ``VARIABLE: why`` line each (empty when fine).

    In production (:func:`is_production`): secrets left empty or at their built-in development
    value, and missing Voyager credentials (host, RoboTarget MAC key and words; a password when a
    user is set), the web app's session secret and the SMTP host. With a Stripe test-mode key talking to Stripe itself (not localstripe), the Stripe
    secrets alone: Stripe's webhooks could never verify against the development secret, and the
    simulator stays usable for development.
    """
    production = is_production(settings)
    if not production and not settings.stripe.has_real_key():
        return []
    problems = []
    for name, value, dev in _DEV_SECRETS:
        current = value(settings)
        if not current:
            problems.append(f"{name}: must be set in production")
        elif current == dev:
            problems.append(f"{name}: is the built-in development value; set the real secret")
    if not production:
        return problems
    if not settings.orders.site_workers:  # network mode: the site workers hold the Voyager links
        problems += voyager_problems(settings)
    if not settings.web.session_secret.get_secret_value():
        # A random per-process secret signs out every customer at each restart and breaks
        # sign-in across several API processes.
        problems.append("STELLAR_WEB__SESSION_SECRET: must be set in production (signs the web app's session cookie)")
    if not settings.mail.host:
        problems.append("STELLAR_MAIL__HOST: must name the SMTP server in production (empty = the dev sink)")
    return problems


def voyager_problems(settings: Settings) -> list[str]:
    """In production, what the process that drives Voyager (the worker in the single-telescope
    shape, else each site worker) must not start without: host, MAC key and words, a password when
    a user is set. One ``VARIABLE: why`` line each."""
    if not is_production(settings):
        return []
    problems = []
    v = settings.voyager
    if not v.host:
        problems.append("STELLAR_VOYAGER__HOST: must name the Voyager PC in production (empty = simulator)")
    if not v.mac_key.get_secret_value():
        problems.append("STELLAR_VOYAGER__MAC_KEY: the RoboTarget licence MAC key is missing")
    if not v.mac_words.get_secret_value():
        problems.append("STELLAR_VOYAGER__MAC_WORDS: the four RoboTarget licence MAC words are missing")
    if v.username and not v.password.get_secret_value():
        problems.append("STELLAR_VOYAGER__PASSWORD: STELLAR_VOYAGER__USERNAME is set but the password is empty")
    return problems


def check_production(settings: Settings) -> None:
    """Refuse to start a production process on unsafe defaults (see :func:`production_problems`).
    Raises SettingsError naming every offending variable."""
    problems = production_problems(settings)
    if problems:
        raise SettingsError("unsafe production configuration:\n  " + "\n  ".join(problems))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built on first use."""
    return load_settings()
