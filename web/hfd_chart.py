"""The order page's HFD-over-time chart: one dot per frame (accepted or rejected) against the time
it was taken, with the order's HFD limit. Server-rendered SVG, re-rendered with the order summary
after each live event (no JavaScript)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.db import ShotDone

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP, PAD_RIGHT = 640, 200, 40, 24, 10, 10


@dataclass(frozen=True)
class FramePoint:
    """One frame on the chart: ``hfd`` in pixels, ``taken_at`` UTC."""

    id: int
    taken_at: datetime
    hfd: float
    accepted: bool


async def order_frames(session: AsyncSession, order_id: int) -> list[FramePoint]:
    """Every frame of the order with an HFD and a time, oldest first (rejected ones too: their
    files may be gone, their HFD is what the chart shows)."""
    rows = (await session.exec(
        select(ShotDone.id, ShotDone.taken_at, ShotDone.hfd, ShotDone.accepted)
        .where(ShotDone.order_id == order_id, ShotDone.hfd.is_not(None), ShotDone.taken_at.is_not(None))
        .order_by(ShotDone.taken_at, ShotDone.id)
    )).all()
    return [FramePoint(r[0], r[1], float(r[2]), bool(r[3])) for r in rows]


def render_hfd_svg(points: list[FramePoint], *, limit: float | None, labels: dict[str, str]) -> str:
    """The chart as an inline ``<svg>``; ``limit``: the order's HFD limit in pixels (a dashed line),
    None for none. ``labels``: translated ``title``, ``limit``, ``accepted``, ``rejected``. An
    empty ``points`` gives the axes alone."""
    top = max([p.hfd for p in points] + [limit or 0.0, 1.0]) * 1.15
    inner_w, inner_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM
    t0 = points[0].taken_at if points else None
    span = max(((points[-1].taken_at - t0).total_seconds() if points else 0.0), 1.0)

    def x(p: FramePoint) -> float:
        return PAD_LEFT + inner_w * ((p.taken_at - t0).total_seconds() / span if len(points) > 1 else 0.5)

    def y(hfd: float) -> float:
        return PAD_TOP + inner_h * (1 - hfd / top)

    title = escape(labels["title"])
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{title}" class="hfd-chart" data-testid="hfd-chart">', f"<title>{title}</title>",
             f'<rect x="{PAD_LEFT}" y="{PAD_TOP}" width="{inner_w}" height="{inner_h}" fill="#fff" stroke="#ccd"/>']
    for tick in range(0, int(top) + 1):
        parts.append(f'<text x="4" y="{y(tick) + 4:.1f}" font-size="10" fill="#333">{tick} px</text>')
    if limit is not None:
        parts.append(f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y(limit):.1f}" y2="{y(limit):.1f}" '
                     f'stroke="#e05050" stroke-dasharray="6 4"><title>{escape(labels["limit"])}</title></line>')
    if points:
        parts.append(f'<text x="{PAD_LEFT}" y="{HEIGHT - 6}" font-size="10" fill="#333">{points[0].taken_at:%H:%M}</text>')
        parts.append(f'<text x="{WIDTH - PAD_RIGHT - 30}" y="{HEIGHT - 6}" font-size="10" fill="#333">'
                     f"{points[-1].taken_at:%H:%M}</text>")
    for p in points:
        state = "accepted" if p.accepted else "rejected"
        colour = "#207a3a" if p.accepted else "#b00020"
        parts.append(f'<circle cx="{x(p):.1f}" cy="{y(p.hfd):.1f}" r="4" fill="{colour}" class="hfd-point {state}" '
                     f'data-frame-id="{p.id}"><title>{p.taken_at:%H:%M:%S} · HFD {p.hfd:.2f} px · '
                     f'{escape(labels[state])}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)
