"""Charts as server-rendered SVG: no JavaScript, nothing to vendor, CSP-friendly (colours
come from classes in the stylesheet, never from inline styles). Every label is escaped."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo

from markupsafe import Markup, escape


def _fmt_time(value: datetime, step: int) -> str:
    if step < 86400:
        return value.strftime("%H:%M")
    # day buckets start at midnight UTC: in another zone that is some hour of the day before
    return value.strftime("%m-%d" if (value.hour, value.minute) == (0, 0) else "%m-%d %H:%M")


def time_bars(
    times: Sequence[datetime],
    series: Sequence[tuple[str, str, Sequence[int]]],
    *,
    step: int,
    title: str,
    width: int = 720,
    height: int = 180,
    zone: tzinfo = UTC,
) -> Markup:
    """Stacked bars over time. ``series`` is (label, css class, values) per stack layer. The
    axis and the bars' titles are written in ``zone`` (the page's display zone), named on the
    axis."""
    times = [t.astimezone(zone) for t in times]
    left, bottom, top = 44, 22, 20  # the legend sits in the top band
    plot_w, plot_h = width - left - 8, height - bottom - top
    n = len(times)
    totals = [sum(values[i] for _, _, values in series) for i in range(n)]
    peak = max(totals, default=0) or 1
    bar_w = plot_w / max(n, 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}"/>',
        f'<text class="tick" x="{left - 6}" y="{top + 8}" text-anchor="end">{peak}</text>',
        f'<text class="tick" x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    for i in range(n):
        y: float = top + plot_h
        x = left + i * bar_w
        for label, css, values in series:
            value = values[i]
            if not value:
                continue
            h = value / peak * plot_h
            y -= h
            parts.append(
                f'<rect class="{escape(css)}" x="{x + 0.5:.1f}" y="{y:.1f}" '
                f'width="{max(bar_w - 1, 1):.1f}" height="{h:.1f}">'
                f"<title>{escape(label)} {_fmt_time(times[i], step)}: {value}</title></rect>"
            )
    ticks = max(1, n // 6)
    for i in range(0, n, ticks):
        x = left + i * bar_w
        parts.append(f'<text class="tick" x="{x:.1f}" y="{height - 6}">{_fmt_time(times[i], step)}</text>')
    if n:  # the axis says its zone, as every timestamp does
        zone_name = times[0].strftime("%Z") or "UTC"
        parts.append(f'<text class="tick zone" x="{width - 8}" y="{top - 6}" text-anchor="end">'
                     f"{escape(zone_name)}</text>")
    legend_x = left + 8
    for label, css, _ in series:
        parts.append(
            f'<rect class="{escape(css)}" x="{legend_x}" y="4" width="10" height="10"/>'
            f'<text class="legend" x="{legend_x + 14}" y="13">{escape(label)}</text>'
        )
        legend_x += 14 + 8 * len(label) + 16
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated value above is escaped or numeric


def hbars(
    items: Sequence[tuple[str, int, bool]], *, title: str, width: int = 420, row: int = 20, label_w: int = 150
) -> Markup:
    """Horizontal bars, one per (label, value, highlighted) item."""
    height = row * max(len(items), 1) + 6
    peak = max((v for _, v, _ in items), default=0) or 1
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value, marked) in enumerate(items):
        y = 3 + i * row
        w = value / peak * (width - label_w - 50)
        css = "bar-marked" if marked else "bar"
        parts.append(
            f'<text class="label" x="{label_w - 6}" y="{y + row * 0.7:.1f}" text-anchor="end">'
            f"{escape(label[:24])}</text>"
            f'<rect class="{css}" x="{label_w}" y="{y}" width="{max(w, 1):.1f}" height="{row - 5}"/>'
            f'<text class="value" x="{label_w + w + 4:.1f}" y="{y + row * 0.7:.1f}">{value}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - escaped above


def sparkline(values: Sequence[int], *, width: int = 120, height: int = 24, title: str = "") -> Markup:
    """A small line of ``values`` (a source's rate over time)."""
    if not values:
        return Markup('<svg class="spark" viewBox="0 0 1 1"></svg>')
    peak = max(values) or 1
    step = width / max(len(values) - 1, 1)
    points = " ".join(
        f"{i * step:.1f},{height - 2 - v / peak * (height - 4):.1f}" for i, v in enumerate(values)
    )
    return Markup(  # noqa: S704 - numbers and an escaped title only
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<polyline class="spark-line" points="{points}"/></svg>'
    )
