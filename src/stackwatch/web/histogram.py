"""The search page's histogram of hits over time, as server-rendered SVG that
``static/dashboard.js`` makes brushable: the SVG carries its time axis (start, step, plot
geometry) in data attributes, so the script maps a dragged span to a ``from``/``to`` window
without knowing anything else. Every bar is also a link to its own bucket (zoom without
the script)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo

from markupsafe import Markup, escape

from stackwatch.search.run import Buckets

LEFT, RIGHT, TOP, BOTTOM = 44, 8, 8, 22


def _label(buckets: Buckets, index: int, zone: tzinfo) -> str:
    moment = (buckets.start + buckets.step * index).astimezone(zone)
    if buckets.step.total_seconds() >= 86400:
        return moment.strftime("%m-%d")
    return moment.strftime("%H:%M:%S" if buckets.step.total_seconds() < 60 else "%m-%d %H:%M")


def histogram_svg(buckets: Buckets, zone: tzinfo, link: Callable[[str, str], str], *,
                  width: int = 1000, height: int = 140) -> Markup:
    """Bars of ``buckets`` (labels in ``zone``); ``link(from_iso, to_iso)`` is a bar's URL."""
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    size = len(buckets.counts)
    peak = max(buckets.counts, default=0) or 1
    bar_w = plot_w / size
    zone_name = buckets.start.astimezone(zone).strftime("%Z") or "UTC"
    title = f"Hits per {_step_text(buckets)} ({zone_name})"
    start_ms = int(buckets.start.timestamp() * 1000)
    step_ms = int(buckets.step.total_seconds() * 1000)
    parts = [
        f'<svg class="chart histogram" id="histogram" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" data-start="{start_ms}" data-step="{step_ms}" data-size="{size}" '
        f'data-left="{LEFT}" data-plot-width="{plot_w}">',
        f"<title>{escape(title)}</title>",
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{width - RIGHT}" y2="{TOP + plot_h}"/>',
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + 8}" text-anchor="end">{peak}</text>',
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end">0</text>',
    ]
    for i, value in enumerate(buckets.counts):
        if not value:
            continue
        x = LEFT + i * bar_w
        h = max(value / peak * plot_h, 1.0)
        lo = buckets.start + buckets.step * i
        hi = lo + buckets.step
        href = link(lo.isoformat().replace("+00:00", "Z"), hi.isoformat().replace("+00:00", "Z"))
        parts.append(
            f'<a href="{escape(href)}" class="bucket"><rect class="bar" x="{x + 0.5:.1f}" '
            f'y="{TOP + plot_h - h:.1f}" '
            f'width="{max(bar_w - 1, 1):.1f}" height="{h:.1f}"><title>{escape(_label(buckets, i, zone))} '
            f"{zone_name}: {value}</title></rect></a>"
        )
    ticks = max(1, size // 6)
    for i in range(0, size, ticks):
        parts.append(f'<text class="tick" x="{LEFT + i * bar_w:.1f}" y="{height - 6}">'
                     f"{escape(_label(buckets, i, zone))}</text>")
    parts.append(f'<rect class="brush" id="brush" x="0" y="{TOP}" width="0" height="{plot_h}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated value is escaped or numeric


def _step_text(buckets: Buckets) -> str:
    seconds = int(buckets.step.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return unit if n == 1 else f"{n} {unit}s"
    return "second" if seconds == 1 else f"{seconds} seconds"
