"""The API's and the workflow's English messages in the reader's language, through the gettext
catalogs: each known message shape is a pattern and a msgid with the same placeholders
(``priority 3 needs Quasar`` → « la priorité 3 demande Quasar »). A message of no known shape is
shown as the API wrote it. Order statuses are translated as words.
"""

from __future__ import annotations

import re
from typing import Callable


def N_(message: str) -> str:
    """Marks a msgid for extraction (pybabel's default keywords); translated at render time."""
    return message


_PATTERNS: list[tuple[re.Pattern[str], str]] = [(re.compile(p), m) for p, m in (
    # billing.plans.gate (403 plan_violation, per field)
    (r"priority (?P<n>\d+) needs (?P<plan>\w+)", N_("priority %(n)s needs %(plan)s")),
    (r"moon-down needs (?P<plan>\w+)", N_("moon-down needs %(plan)s")),
    (r"an HFD guarantee needs (?P<plan>\w+)", N_("an HFD guarantee needs %(plan)s")),
    (r"a custom HFD limit needs (?P<plan>\w+)", N_("a custom HFD limit needs %(plan)s")),
    (r"repeat needs (?P<plan>\w+)", N_("repeat needs %(plan)s")),
    (r"an hour-angle window needs (?P<plan>\w+)", N_("an hour-angle window needs %(plan)s")),
    (r"the plan does not allow this order", N_("the plan does not allow this order")),
    (r"mosaics need (?P<plan>\w+)", N_("mosaics need %(plan)s")),
    # core.mosaic.split_refusal (docs/mosaics.md)
    (r"(?P<q>\d+) frames do not split evenly over (?P<n>\d+) panels; nearest valid quantities: (?P<valid>.*)",
     N_("%(q)s frames do not split evenly over %(n)s panels; nearest valid quantities: %(valid)s")),
    # api.services.sets (docs/sets.md)
    (r"customer Sets are included in the (?P<plans>.*) plan; without it every order goes to your default Set",
     N_("customer Sets are included in the %(plans)s plan; without it every order goes to your default Set")),
    (r"no set (?P<id>\d+)", N_("no set %(id)s")),
    (r"you already have a set named '(?P<name>.*)'", N_("you already have a set named '%(name)s'")),
    (r"the default set cannot be deleted; orders without set_id go there",
     N_("the default set cannot be deleted; orders without a set go there")),
    (r"set (?P<id>\d+) still holds (?P<n>\d+) order\(s\) that have not ended; abort them or wait for them to end",
     N_("set %(id)s still holds %(n)s order(s) that have not ended; abort them or wait for them to end")),
    # api.services.assignment (docs/telescopes.md §2): the reason for a telescope, and why one cannot take an order
    (r"any: (?P<slug>[a-z][a-z0-9-]*) at (?P<site>.*), next observable window (?P<t>[\d-]+ [\d:]+) UTC, "
     r"(?P<n>\d+) order\(s\) waiting there; (?P<others>\d+) other telescope\(s\) fit, (?P<unfit>\d+) online one\(s\) do not",
     N_("any: %(slug)s at %(site)s, next observable window %(t)s UTC, %(n)s order(s) waiting there; "
        "%(others)s other telescope(s) fit, %(unfit)s online one(s) do not")),
    (r"any: (?P<slug>[a-z][a-z0-9-]*) at (?P<site>.*), no observable window in the look-ahead yet, "
     r"(?P<n>\d+) order\(s\) waiting there; (?P<others>\d+) other telescope\(s\) fit, (?P<unfit>\d+) online one\(s\) do not",
     N_("any: %(slug)s at %(site)s, no observable window in the look-ahead yet, %(n)s order(s) waiting there; "
        "%(others)s other telescope(s) fit, %(unfit)s online one(s) do not")),
    (r"named: (?P<slug>[a-z][a-z0-9-]*) at (?P<site>.*), next observable window (?P<t>[\d-]+ [\d:]+) UTC",
     N_("named: %(slug)s at %(site)s, next observable window %(t)s UTC")),
    (r"named: (?P<slug>[a-z][a-z0-9-]*) at (?P<site>.*), no observable window in the look-ahead yet",
     N_("named: %(slug)s at %(site)s, no observable window in the look-ahead yet")),
    (r"(?P<target>[^;]*) never rises above (?P<floor>-?[\d.]+)° in darkness at (?P<site>[^;]*) \((?P<slug>[a-z][a-z0-9-]*)\) "
     r"between (?P<start>[\d-]+ [\d:]+) and (?P<end>[\d-]+ [\d:]+) UTC \(at best (?P<best>-?[\d.]+)°\)",
     N_("%(target)s never rises above %(floor)s° in darkness at %(site)s (%(slug)s) between %(start)s and %(end)s UTC "
        "(at best %(best)s°)")),
    (r"(?P<target>[^;]*) never rises above (?P<floor>-?[\d.]+)° in darkness at (?P<site>[^;]*) \((?P<slug>[a-z][a-z0-9-]*)\) "
     r"between (?P<start>[\d-]+ [\d:]+) and (?P<end>[\d-]+ [\d:]+) UTC \(never in darkness\)",
     N_("%(target)s never rises above %(floor)s° in darkness at %(site)s (%(slug)s) between %(start)s and %(end)s UTC "
        "(never in darkness)")),
    # api.services.orders
    (r"order (?P<id>\d+) not found", N_("order %(id)s not found")),
    (r"order (?P<id>\d+) is (?P<status>\w+) and can no longer be aborted",
     N_("order %(id)s is %(status)s and can no longer be aborted")),
    (r"order (?P<id>\d+) cannot be aborted: (?P<why>.*)", N_("order %(id)s cannot be aborted: %(why)s")),
    (r"'(?P<name>.*)' is not a catalogue designation \(e\.g\. M42, NGC 7000, IC1396\)",
     N_("'%(name)s' is not a catalogue designation (e.g. M42, NGC 7000, IC1396)")),
    (r"customer \d+ needs (?P<need>\d+) credits but has (?P<have>-?\d+) available \(short by (?P<short>\d+)\)",
     N_("needs %(need)s credits, %(have)s available (short by %(short)s)")),
    # api.services.credits (support adjustments)
    (r"staff cannot adjust their own account; ask another member of staff",
     N_("staff cannot adjust their own account; ask another member of staff")),
    (r"adjustments above (?P<n>\d+) credits need the admin role", N_("adjustments above %(n)s credits need the admin role")),
    (r"\|amount\| > (?P<n>\d+) needs admin", N_("above %(n)s credits needs the admin role")),
    (r"this page needs the support role", N_("this page needs the support role")),
    (r"a reason is required", N_("a reason is required")),
    # pydantic (the API's 422 field messages)
    (r"Field required", N_("required")),
    (r"Input should be greater than (?P<n>[\d.]+)", N_("must be greater than %(n)s")),
    (r"Input should be greater than or equal to (?P<n>[\d.]+)", N_("must be at least %(n)s")),
    (r"Input should be less than or equal to (?P<n>[\d.]+)", N_("must be at most %(n)s")),
    (r"Input should be a valid number, unable to parse string as a number", N_("must be a number")),
    (r"Input should be a valid integer, unable to parse string as an integer", N_("must be a whole number")),
    (r"List should have at least 1 item after validation, not 0", N_("give at least one shot line")),
    (r"Value error, must not be 0", N_("must not be 0")),
    # web.coordinates
    (r"give both right ascension and declination, or neither", N_("give both right ascension and declination, or neither")),
    (r"give the right ascension", N_("give the right ascension")),
    (r"give the declination", N_("give the declination")),
    (r"not a right ascension: use 05h35m17s, 5:35:17 or degrees \(83\.8\)",
     N_("not a right ascension: use 05h35m17s, 5:35:17 or degrees (83.8)")),
    (r"not a declination: use -05d23m28s, -5:23:28 or degrees \(-5\.39\)",
     N_("not a declination: use -05d23m28s, -5:23:28 or degrees (-5.39)")),
    (r"right ascension must be 0–24 h \(0–360°\)", N_("right ascension must be 0–24 h (0–360°)")),
    (r"declination must be between −90° and \+90°", N_("declination must be between −90° and +90°")),
)]

#: Order statuses (models.orders.OrderStatus) as words for the reader.
STATUSES = {
    "pending": N_("pending"), "held": N_("credits held"), "submitted": N_("submitted"), "running": N_("running"),
    "settling": N_("settling"), "completed": N_("completed"), "partial": N_("partial"), "aborted": N_("aborted"),
    "expired": N_("expired"), "failed": N_("failed"), "rejected": N_("rejected"),
}


def _translate_one(message: str, gettext: Callable[[str], str]) -> str | None:
    for pattern, msgid in _PATTERNS:
        m = pattern.fullmatch(message)
        if m:
            values = m.groupdict()
            if "status" in values:
                values["status"] = gettext(STATUSES.get(values["status"], values["status"]))
            return gettext(msgid) % values
    return None


def translate_message(message: str | None, gettext: Callable[[str], str]) -> str:
    """``message`` in the catalog's language when its shape is known, else unchanged. A message of
    several parts joined by ``"; "`` (the assignment's refusal, one part per telescope) has each
    known part translated."""
    if not message:
        return ""
    whole = _translate_one(message, gettext)
    if whole is not None:
        return whole
    if "; " not in message:
        return message
    return "; ".join(_translate_one(part, gettext) or part for part in message.split("; "))


def translate_status(status: str | None, gettext: Callable[[str], str]) -> str:
    """An order status as a word of the reader's language (unknown ones unchanged)."""
    return gettext(STATUSES[status]) if status in STATUSES else (status or "")
