"""Charts drawn on the server as SVG geometry (no script): a template draws the shapes, and
every chart is followed by its numbers as a table and described in words."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils import formats
from django.utils.translation import gettext

from console.progress import Completion, MonthCount, Step

WIDTH, HEIGHT, LEFT, BOTTOM, TOP, RIGHT = 640, 240, 48, 28, 12, 12


@dataclass(frozen=True)
class Tick:
    at: int
    label: str


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    w: int
    h: int
    label: str
    value: str

    @property
    def text_x(self) -> int:
        return self.x + self.w + 6

    @property
    def text_y(self) -> int:
        return self.y + self.h // 2 + 5


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    lines: dict[str, str]  # name -> SVG polyline points
    bars: list[Bar]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    description: str
    baseline_y: int = HEIGHT - BOTTOM


def _nice_max(value: int) -> int:
    for step in (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000, 50000):
        if value <= step * 5:
            return max(step * -(-value // step), step)
    return value


def recruitment_chart(months: Sequence[MonthCount], *, target: int) -> Chart:
    """Cumulative randomised by month (solid) against the target's straight line (dashed)."""
    top = _nice_max(max([target, *(m.cumulative for m in months)], default=1))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(months) - 1, 1)

    def y(value: int) -> int:
        return round(TOP + plot_h * (1 - value / top))

    def points(values: Sequence[int]) -> str:
        return " ".join(f"{round(LEFT + i * step)},{y(v)}" for i, v in enumerate(values))

    every = max(1, -(-len(months) // 8))
    x_ticks = [Tick(round(LEFT + i * step), formats.date_format(m.month, "M Y")) for i, m in enumerate(months) if i % every == 0]
    y_ticks = [Tick(y(top * k // 4), str(top * k // 4)) for k in range(5)]
    last = months[-1] if months else None
    description = (
        gettext("%(randomised)s randomised by %(month)s, against a target of %(target)s by then and %(total)s in all.")
        % {"randomised": last.cumulative, "month": formats.date_format(last.month, "F Y"), "target": last.target, "total": target}
        if last
        else gettext("Recruitment has not started.")
    )
    return Chart(
        WIDTH,
        HEIGHT,
        {"randomised": points([m.cumulative for m in months]), "target": points([m.target for m in months])},
        [],
        x_ticks,
        y_ticks,
        description,
    )


def funnel_chart(steps: Sequence[Step]) -> Chart:
    """Horizontal bars, one per step, longest first."""
    top = max((s.n for s in steps), default=0) or 1
    label_w, bar_h, gap = 190, 26, 12
    plot_w = WIDTH - label_w - 70
    bars = [
        Bar(label_w, TOP + i * (bar_h + gap), max(round(plot_w * s.n / top), 1 if s.n else 0), bar_h, s.label, str(s.n))
        for i, s in enumerate(steps)
    ]
    height = TOP + len(steps) * (bar_h + gap) + 4
    description = ", ".join(f"{s.label.lower()} {s.n}" for s in steps).capitalize() + "."
    return Chart(WIDTH, height, {}, bars, [], [], description)


def completion_chart(rows: Sequence[Completion]) -> Chart:
    """Vertical bars: per month after randomisation, the percentage of closed questionnaires completed."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(rows), 1)
    bars = []
    for i, row in enumerate(rows):
        h = round(plot_h * row.percent / 100)
        bars.append(
            Bar(
                round(LEFT + i * slot + slot * 0.15),
                TOP + plot_h - h,
                max(round(slot * 0.7), 1),
                h,
                gettext("Month %(month)s") % {"month": row.month},
                f"{row.percent}%",
            )
        )
    every = max(1, -(-len(rows) // 12))
    x_ticks = [Tick(round(LEFT + i * slot + slot / 2), str(row.month)) for i, row in enumerate(rows) if i % every == 0]
    y_ticks = [Tick(round(TOP + plot_h * (1 - k / 4)), f"{25 * k}%") for k in range(5)]
    completed, closed = sum(r.completed for r in rows), sum(r.closed for r in rows)
    description = gettext(
        "%(completed)s of %(closed)s monthly questionnaires that have closed were completed (%(percent)s%%),"
        " over %(months)s months of follow-up."
    ) % {
        "completed": completed,
        "closed": closed,
        "percent": round(100 * completed / closed) if closed else 0,
        "months": len(rows),
    }
    return Chart(WIDTH, HEIGHT, {}, bars, x_ticks, y_ticks, description)
