"""The host's earnings page: the month's statement of the signed-in host, with its CSV
(docs/host-earnings.md §4). Figures from api/services/host_earnings.py, as the API's."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import SessionDep
from api.errors import ApiError
from api.services import host_earnings as service
from web.deps import MeDep
from web.templating import render

router = APIRouter(prefix="/app")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _month(month: str) -> str:
    return month if _MONTH.match(month) else datetime.now(timezone.utc).strftime("%Y-%m")


@router.get("/host/earnings")
async def earnings_page(request: Request, me: MeDep, session: SessionDep, month: str = ""):
    """``?month=YYYY-MM`` (default: this month, UTC): telescopes, the month's lines, customers."""
    month = _month(month)
    conn = await session.connection()
    try:
        report = await service.host_earnings(conn, me.customer_id)
    except ApiError as exc:
        return render(request, "error.html", status_code=exc.status_code, message=exc.message, code=exc.code)
    lines = await service.statement_lines(conn, me.customer_id, month)
    return render(request, "host_earnings.html", report=report, lines=lines, month=month,
                  month_total=sum(ln.amount_cents for ln in lines))


@router.get("/host/earnings.csv")
async def earnings_csv(me: MeDep, session: SessionDep, month: str = "") -> Response:
    month = _month(month)
    lines = await service.statement_lines(await session.connection(), me.customer_id, month)
    return Response(service.statement_csv(lines), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="stellar-statement-{month}.csv"'})
