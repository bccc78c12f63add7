"""The order page's live stream: the API's order events (``api.services.order_stream``) turned into
HTML fragments for htmx's SSE extension.

Each ``progress`` event becomes ``event: frame`` (the new frame's card, prepended to the list, unless
Voyager deleted the frame as rejected: the page lists the frames the order keeps; the page drops a
card whose frame it already shows, ``order.html``) and
``event: summary`` (status, per-filter progress, credits and the HFD chart, re-rendered from the database, the one
source of truth); each ``status`` event becomes ``event: summary``. When the order is final the
stream sends ``event: closed`` (the page's ``sse-close``) so the browser does not reconnect.
"""

from __future__ import annotations

import json
from typing import AsyncIterator

from fastapi import Request

from api.resources import Resources
from api.security import Principal
from api.services import order_views
from api.services.order_stream import order_events
from models.db import ShotDone
from web.hfd_chart import order_frames
from web.templating import render


def _parse(chunk: str) -> tuple[str | None, str | None, dict | None]:
    """(id, event name, data) of one SSE message as ``format_event`` writes it; Nones otherwise."""
    event_id, event, data = None, None, None
    for line in chunk.splitlines():
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
    return event_id, event, data


def _message(event: str, html: str, event_id: str | None = None) -> str:
    # The id lets the browser's EventSource resume after a dropped connection (Last-Event-ID)
    # instead of replaying frames the page already shows.
    head = f"id: {event_id}\n" if event_id else ""
    return head + f"event: {event}\n" + "".join(f"data: {line}\n" for line in html.splitlines() or [""]) + "\n"


async def order_live_html(request: Request, res: Resources, me: Principal, order_id: int,
                          after: int) -> AsyncIterator[str]:
    """SSE text for the order page of ``order_id`` after event id ``after``."""
    async for chunk in order_events(res, order_id, after):
        event_id, event, data = _parse(chunk)
        if event is None:
            yield chunk  # retry / heartbeat comments pass through
            continue
        async with res.sessionmaker() as session:
            if event == "progress" and data and data.get("frame"):
                row = await session.get(ShotDone, int(data["frame"]["id"]))
                # The list holds the frames the order keeps, as the page and the gallery list them
                # (api/services/order_views.py): a frame Voyager rejected and deleted is a dot of
                # the HFD chart and a count of the summary, not a card that a reload would drop.
                if row is not None and not row.is_deleted:
                    frame = order_views.image_out(row)
                    html = render(request, "_frame.html", f=frame, star_index=row.star_index).body.decode()
                    yield _message("frame", html)
            order = await order_views.get_order(session, order_id, me)
            view = await order_views.order_out(session, order, res.settings)
            points = await order_frames(session, order_id)
        yield _message("summary", render(request, "_order_summary.html", o=view, hfd_points=points).body.decode(),
                       event_id)
    yield _message("closed", "")
