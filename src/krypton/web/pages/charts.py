"""Charts for the dashboard, drawn on the server as SVG: pure functions from numbers to an SVG
document. No script, no style attribute (the page's policy allows neither): colours are SVG
presentation attributes (`fill`, `stroke`), every piece of text is escaped. Served as images
from the dashboard's own origin (dashboard_merchant.py), so nothing comes from a CDN."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median
from xml.sax.saxutils import escape, quoteattr

from krypton.domain.money import format_units

# Small and with large type: the image is shown from 390 px (about 0.7 of this) up to 640 px.
WIDTH = 480
HEIGHT = 220
# Room for the axis labels: left for the values, bottom for the days.
LEFT, RIGHT, TOP, BOTTOM = 58, 10, 34, 30
# A lone bar or a few stay bars, not a wall.
MAX_SLOT = 40.0
BAR = "#0a66c2"
SLOW = "#8a5300"
GRID = "#e1e5ea"
INK = "#16202a"
MUTED = "#5a6776"
FONT = "system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif"


@dataclass(frozen=True, slots=True)
class DayVolume:
    day: str  # ISO date, 2026-12-06
    units: int  # gross, in the asset's smallest unit


@dataclass(frozen=True, slots=True)
class ConfirmationTime:
    label: str  # what the bar stands for (a payment id), shown as the bar's tooltip
    seconds: float


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = 13,
          colour: str = MUTED) -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
            f'fill="{colour}">{escape(text)}</text>')


def _document(title: str, body: list[str]) -> str:
    """The SVG root with an accessible name (`title` is also its first line of text)."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label={quoteattr(title)} '
            f'font-family={quoteattr(FONT)}>'
            f'<title>{escape(title)}</title>'
            f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>'
            + _text(LEFT, 20, title, size=15, colour=INK) + "".join(body) + "</svg>")


def empty(title: str, message: str) -> str:
    return _document(title, [_text(WIDTH / 2, HEIGHT / 2, message, anchor="middle", size=14)])


def _bars(values: Sequence[float], colours: Sequence[str], tips: Sequence[str]) -> list[str]:
    """One bar per value, scaled to the largest, in the plot area; each with a tooltip."""
    top = max(values, default=0) or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = min(plot_w / max(len(values), 1), MAX_SLOT)
    gap = min(4.0, slot * 0.2)
    out = []
    for i, (value, colour, tip) in enumerate(zip(values, colours, tips, strict=True)):
        height = plot_h * value / top
        # A zero still shows as a hairline: the day is there, nothing happened on it.
        height = max(height, 1.0)
        x, y = LEFT + i * slot + gap / 2, TOP + plot_h - height
        out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot - gap:.1f}" height="{height:.1f}" '
                   f'fill="{colour}"><title>{escape(tip)}</title></rect>')
    return out


def _axis(top_label: str) -> list[str]:
    """The base line, a line at the top value, and their labels."""
    base, high = HEIGHT - BOTTOM, TOP
    return [f'<line x1="{LEFT}" y1="{high}" x2="{WIDTH - RIGHT}" y2="{high}" stroke="{GRID}"/>',
            f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" stroke="{MUTED}"/>',
            _text(LEFT - 6, high + 4, top_label, anchor="end"),
            _text(LEFT - 6, base + 4, "0", anchor="end")]


def _x_labels(labels: Sequence[str]) -> list[str]:
    """Under the bars (one label each, "" for none), the first, middle and last: enough to
    read the span at 390 px."""
    if not labels:
        return []
    slot = min((WIDTH - LEFT - RIGHT) / len(labels), MAX_SLOT)
    picks = [i for i in sorted({0, len(labels) // 2, len(labels) - 1}) if labels[i]]
    anchors = {0: "start", len(labels) - 1: "end"}
    out = []
    for i in picks:
        anchor = anchors.get(i, "middle")
        x = LEFT + i * slot + (0 if anchor == "start" else slot if anchor == "end" else slot / 2)
        out.append(_text(x, HEIGHT - 10, labels[i], anchor=anchor))
    return out


def volume_chart(asset: str, decimals: int, days: Sequence[DayVolume]) -> str:
    """Daily settled volume of one asset: a bar per day (the days given, zeros included)."""
    title = f"Daily volume, {asset}"
    if not any(d.units for d in days):
        return empty(title, f"No {asset} settled in these {len(days)} days.")
    top = max(d.units for d in days)
    tips = [f"{d.day}: {format_units(d.units, decimals)} {asset}" for d in days]
    return _document(title, [*_axis(f"{format_units(top, decimals)}"),
                             *_bars([float(d.units) for d in days], [BAR] * len(days), tips),
                             *_x_labels([d.day[5:] for d in days])])


def duration(seconds: float) -> str:
    """A short, readable duration: 45 s, 3.5 min, 2.1 h."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def confirmation_chart(times: Sequence[ConfirmationTime]) -> str:
    """How long payments took from first seen to confirmed, oldest first: a bar each, the
    ones slower than twice the median in the warning colour, the median as a dashed line."""
    title = "Confirmation time per payment"
    if not times:
        return empty(title, "No confirmed payments yet.")
    values = [max(t.seconds, 0.0) for t in times]
    middle = median(values)
    colours = [SLOW if middle and v > 2 * middle else BAR for v in values]
    tips = [f"{t.label}: {duration(v)}" for t, v in zip(times, values, strict=True)]
    top = max(values) or 1
    plot_h = HEIGHT - TOP - BOTTOM
    y = TOP + plot_h - plot_h * middle / top
    median_line = [f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="{INK}" '
                   f'stroke-dasharray="4 3"/>',
                   _text(WIDTH - RIGHT, y - 4, f"median {duration(middle)}", anchor="end", colour=INK)]
    return _document(title, [*_axis(duration(top)), *_bars(values, colours, tips), *median_line,
                             *_x_labels(["oldest", *[""] * (len(times) - 2), "newest"]
                                        if len(times) > 1 else [])])
