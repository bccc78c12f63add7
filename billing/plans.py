"""Plans as data, and the gate that turns an order's constraints into RoboTarget fields.

Source: docs/pricing.md §1 (plans and features) and §4 (the gate and its RoboTarget mapping).
One table (:data:`PLANS`) drives the catalogue (api/schemas/plans.py), the gate and the reasons; no plan-name ``if``s elsewhere.

Rules the gate applies (``gate``):

* priority 0–4; above the plan's ``priority_max`` → ``"priority 3 needs Quasar"``. So Stardust
  (and a customer without a plan, who orders with pack credits at Stardust rules) stays in 0–1.
* moon-down: ``never`` (Stardust: asking for it is refused, C_MoonDown false), ``option`` (Nebula:
  as asked), ``always`` (Quasar: forced on, and charged ×2.0 as docs/pricing.md §3 example 3 is).
* HFD: ``none`` (Stardust: any limit refused, 0 sent), ``standard`` (Nebula: 4.0 px sent, not
  charged; a tighter limit is refused), ``custom`` (Quasar: 1.5–4.0 px; a limit below 4.0 is a
  custom guarantee, charged ×1.5; none or 4.0 = the free standard 4.0). docs/pricing.md §4.
* repeat ≥ 1; > 1 needs a plan with ``repeat`` (``Repeat`` = runs of the shot list, one per night; ``IsRepeat`` follows the plan: multi-night).
* a mosaic (``mosaic_panels`` > 0) only on plans with ``mosaics`` (Quasar; docs/mosaics.md).
* altitude min 0–90° (mask B, always on); hour-angle start/end −12…12 h, start < end (mask D/E),
  only on plans with ``ha_window`` (masks: Stardust "B", Nebula "BK", Quasar all); date window
  end after start (``C_DateStart``/``C_DateEnd`` epoch s, no mask letter in the protocol).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Sequence

from billing.errors import PlanViolation, UnknownPlan
from models.billing import (
    OrderConstraints,
    PricingInput,
    PricedShot,
    VoyagerTargetConstraints,
)
from models.payment_workflows import PlanTable, PlanTerms

STANDARD_HFD_PX = 4.0  # Nebula's standard guarantee; also Quasar's default (docs/pricing.md §4)
CUSTOM_HFD_MIN_PX = 1.5  # Quasar's custom range 1.5–4.0 (docs/pricing.md §4)
PRIORITY_MIN, PRIORITY_MAX = 0, 4
HA_LIMIT_HOURS = 12.0


@dataclass(frozen=True)
class Plan:
    """One subscription plan. ``price_cents``: EUR cents per month; ``monthly_credits``: credits."""

    id: str
    name: str
    price_cents: int
    monthly_credits: int
    priority_max: int
    moon_down: Literal["never", "option", "always"]
    hfd: Literal["none", "standard", "custom"]
    repeat: bool
    sets: bool
    mosaics: bool
    dashboard: bool
    ha_window: bool


#: The one plan table, cheapest first (the order matters: reasons name the cheapest plan that allows).
PLANS: dict[str, Plan] = {
    p.id: p
    for p in (
        #    id          name        cents  credits prio moon      hfd         repeat sets   mosaic dash   HA
        Plan("stardust", "Stardust", 2900, 20, 1, "never", "none", False, False, False, False, False),
        Plan("nebula", "Nebula", 5900, 60, 2, "option", "standard", True, False, False, True, False),
        Plan("quasar", "Quasar", 11900, 150, 4, "always", "custom", True, True, True, True, True),
    )
}

#: Rules for a customer without an active plan (pack credits only): Stardust's.
NO_PLAN_RULES = "stardust"


def get_plan(plan: Plan | str | None) -> Plan:
    """The plan for an id (case-insensitive); ``None`` → Stardust rules. Raises UnknownPlan."""
    if isinstance(plan, Plan):
        return plan
    key = (plan or NO_PLAN_RULES).strip().lower()
    try:
        return PLANS[key]
    except KeyError:
        raise UnknownPlan(str(plan)) from None


def plan_moon_down(plan: Plan | str | None, asked: bool) -> bool:
    """``C_MoonDown`` under ``plan`` for an order that asked moon-down or not (``asked``): ``never``
    → False (asking for it is the gate's refusal), ``always`` → True (Quasar), ``option`` → as
    asked. The gate's rule (:func:`gate`), also for an order it refuses: what the order runs with
    once placed. docs/pricing.md §4. Raises UnknownPlan."""
    p = get_plan(plan)
    return {"never": False, "always": True}.get(p.moon_down, bool(asked))


def plan_table() -> PlanTable:
    """:data:`PLANS` as the subscription workflow's payload (ids, names, prices, credits)."""
    return PlanTable(plans=[PlanTerms(id=p.id, name=p.name, price_cents=p.price_cents,
                                      monthly_credits=p.monthly_credits) for p in PLANS.values()])


def _needs(allowed: Callable[[Plan], bool]) -> str:
    """Name of the cheapest plan that allows something (reasons say what to upgrade to)."""
    return next((p.name for p in PLANS.values() if allowed(p)), "no plan")


def locked_options(plan: Plan | str | None) -> dict[str, str]:
    """Order options ``plan`` does not allow → the name of the cheapest plan that does (what a
    form shows disabled, with the plan that unlocks it; the same reasons :func:`gate` gives).
    Keys: ``priority.<n>``, ``c_moon_down``, ``c_hfd_mean_limit`` (a custom limit), ``repeat``
    (more than one run), ``c_ha_window``, ``sets``, ``mosaics``. Raises UnknownPlan."""
    p = get_plan(plan)
    out = {f"priority.{n}": _needs(lambda q, n=n: q.priority_max >= n)
           for n in range(PRIORITY_MIN, PRIORITY_MAX + 1) if n > p.priority_max}
    checks: dict[str, Callable[[Plan], bool]] = {
        "c_moon_down": lambda q: q.moon_down != "never",
        "c_hfd_mean_limit": lambda q: q.hfd == "custom",
        "repeat": lambda q: q.repeat,
        "c_ha_window": lambda q: q.ha_window,
        "sets": lambda q: q.sets,
        "mosaics": lambda q: q.mosaics,
    }
    out.update({name: _needs(allowed) for name, allowed in checks.items() if not allowed(p)})
    return out


def gate(plan: Plan | str | None, order: OrderConstraints) -> VoyagerTargetConstraints:
    """Check ``order`` against ``plan`` and map it to RoboTarget constraint fields.

    ``plan``: a :class:`Plan`, a plan id, or ``None`` (no active plan: Stardust rules).
    Returns the constraints to send to Voyager (forced values applied). Raises PlanViolation with
    one reason per offending field (every problem at once), or UnknownPlan.
    """
    p = get_plan(plan)
    errors: dict[str, str] = {}

    # priority
    prio = order.priority
    if not PRIORITY_MIN <= prio <= PRIORITY_MAX:
        errors["priority"] = f"priority must be between {PRIORITY_MIN} and {PRIORITY_MAX}, got {prio}"
    elif prio > p.priority_max:
        errors["priority"] = f"priority {prio} needs {_needs(lambda q: q.priority_max >= prio)}"

    # moon down (Quasar: always on, and charged; docs/pricing.md §2)
    moon_down = plan_moon_down(p, bool(order.c_moon_down))
    if order.c_moon_down and not moon_down:
        errors["c_moon_down"] = f"moon-down needs {_needs(lambda q: q.moon_down != 'never')}"

    # HFD guarantee
    limit = order.c_hfd_mean_limit or 0.0
    hfd_sent = 0.0
    if limit < 0:
        errors["c_hfd_mean_limit"] = (
            f"HFD limit must be 0 (none) or {CUSTOM_HFD_MIN_PX}–{STANDARD_HFD_PX} px, got {limit}")
    elif p.hfd == "none":
        if limit > 0:
            errors["c_hfd_mean_limit"] = f"an HFD guarantee needs {_needs(lambda q: q.hfd != 'none')}"
    elif p.hfd == "standard":
        if 0 < limit < STANDARD_HFD_PX:
            errors["c_hfd_mean_limit"] = f"a custom HFD limit needs {_needs(lambda q: q.hfd == 'custom')}"
        elif limit > STANDARD_HFD_PX:
            errors["c_hfd_mean_limit"] = f"HFD limit on {p.name} is the standard {STANDARD_HFD_PX} px, got {limit}"
        hfd_sent = STANDARD_HFD_PX
    else:  # custom
        if limit == 0:
            hfd_sent = STANDARD_HFD_PX
        elif not CUSTOM_HFD_MIN_PX <= limit <= STANDARD_HFD_PX:
            errors["c_hfd_mean_limit"] = (
                f"custom HFD limit must be between {CUSTOM_HFD_MIN_PX} and {STANDARD_HFD_PX} px, got {limit}")
        else:
            hfd_sent = float(limit)

    # repeat
    if order.repeat < 1:
        errors["repeat"] = f"repeat must be at least 1, got {order.repeat}"
    elif order.repeat > 1 and not p.repeat:
        errors["repeat"] = f"repeat needs {_needs(lambda q: q.repeat)}"

    # altitude, hour angle and dates
    if not 0 <= order.c_alt_min <= 90:
        errors["c_alt_min"] = f"minimum altitude must be between 0 and 90 degrees, got {order.c_alt_min}"
    mask = "B"
    for field, value, letter in (("c_ha_start", order.c_ha_start, "D"), ("c_ha_end", order.c_ha_end, "E")):
        if value is None:
            continue
        if not p.ha_window:
            errors[field] = f"an hour-angle window needs {_needs(lambda q: q.ha_window)}"
        elif not -HA_LIMIT_HOURS <= value <= HA_LIMIT_HOURS:
            errors[field] = f"hour angle must be between -12 and 12 hours, got {value}"
        else:
            mask += letter
    if ("D" in mask and "E" in mask) and order.c_ha_start >= order.c_ha_end:  # type: ignore[operator]
        errors["c_ha_end"] = "hour-angle end must be after start"
    if moon_down:
        mask += "K"
    if order.date_start and order.date_end and order.date_end <= order.date_start:
        errors["date_end"] = "date window end must be after its start"
    if order.mosaic_panels and not p.mosaics:
        errors["mosaic"] = f"mosaics need {_needs(lambda q: q.mosaics)}"

    if errors:
        raise PlanViolation(errors)
    return VoyagerTargetConstraints(
        plan=p.id,
        priority=prio,
        # docs/pricing.md §4: Stardust one-shot (IsRepeat false: one night, what is left is
        # released); Nebula/Quasar multi-night (IsRepeat true: Voyager comes back on later nights
        # until the shots are done). ``Repeat`` = runs of the shot list, one per night.
        is_repeat=p.repeat,
        repeat=order.repeat,
        c_mask=mask,
        alt_min=float(order.c_alt_min),
        ha_start=order.c_ha_start if "D" in mask else None,
        ha_end=order.c_ha_end if "E" in mask else None,
        date_start=int(order.date_start.timestamp()) if order.date_start else 0,
        date_end=int(order.date_end.timestamp()) if order.date_end else 0,
        moon_down=moon_down,
        hfd_mean_limit=hfd_sent,
    )


def pricing_input(constraints: VoyagerTargetConstraints, shots: Sequence[PricedShot]) -> PricingInput:
    """What a gated order is charged for. The free standard HFD (4.0 px, Nebula; Quasar without a
    custom limit) is priced as no guarantee; a limit below it is the charged custom guarantee."""
    limit = constraints.hfd_mean_limit
    charged_hfd = limit if 0 < limit < STANDARD_HFD_PX else 0.0
    return PricingInput(
        priority=constraints.priority,
        c_moon_down=constraints.moon_down,
        c_hfd_mean_limit=charged_hfd,
        repeat=constraints.repeat,
        shots=list(shots),
    )
