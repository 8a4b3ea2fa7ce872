"""Charts of a target's key metrics, drawn as SVG on the server.

No script and nothing from the internet at view time (the page's Content-Security-Policy
allows neither): each chart is an ``<svg>`` element in the page. One chart per key metric
the plugin declares (``plugins/keymetrics.py``), one line per series (a metric whose
value is an object, such as Kafka's lag per consumer group, is a line per key), counters
as their rate per second between runs (a reset is a gap, not a negative rate). Under
the plot, each run that had warning or critical findings is a tick on the time axis,
coloured by its worst severity, titled with the codes (a browser shows it on hover).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from html import escape
from typing import Any

from kubestack_ai.plugins.keymetrics import KeyMetric
from kubestack_ai.storage import MetricPoint

W, H = 560, 170
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 10, 40
COLORS = ("#2f6db5", "#c77700", "#1e7a34", "#6a4fb3", "#b3261e", "#4a5362")
MARK = {"critical": "#b3261e", "warning": "#c77700"}
MAX_SERIES = len(COLORS)

Series = dict[str, list[tuple[float, float]]]


def series(km: KeyMetric, points: Sequence[MetricPoint]) -> Series:
    """(unix time, value) per series name; numbers only."""
    raw: Series = {}
    for p in points:
        v = p.values.get(km.name)
        t = p.at.timestamp()
        items: list[tuple[str, Any]] = (
            list(v.items()) if isinstance(v, dict) else [(km.title, v)])
        for name, x in items:
            if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
                continue
            raw.setdefault(str(name), []).append((t, float(x)))
    if km.rate:
        raw = {k: [(t1, (v1 - v0) / (t1 - t0))
                   for (t0, v0), (t1, v1) in zip(pts, pts[1:], strict=False)
                   if t1 > t0 and v1 >= v0] for k, pts in raw.items()}
    # the busiest series first, at most MAX_SERIES lines (a legend names them)
    ranked = sorted(raw.items(), key=lambda kv: -max((v for _, v in kv[1]), default=0))
    return {k: pts for k, pts in ranked[:MAX_SERIES] if pts}


def fmt(value: float, unit: str) -> str:
    """A value as an axis label: bytes in KiB..TiB, ratios to two decimals."""
    if unit == "bytes":
        for suffix, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
            if abs(value) >= size:
                return f"{value / size:.1f} {suffix}"
        return f"{value:.0f} B"
    if unit == "ratio":
        return f"{value:.2f}"
    text = f"{value:.1f}" if abs(value) < 100 and value != int(value) else f"{value:,.0f}"
    return f"{text}{unit if unit in ('%', '/s', 's') else ''}"


def svg(km: KeyMetric, points: Sequence[MetricPoint], t0: dt.datetime,
        t1: dt.datetime) -> str | None:
    """The chart of one key metric between ``t0`` and ``t1``; None when the runs of
    that time reported no number for it."""
    lines = series(km, points)
    if not lines:
        return None
    a, b = t0.timestamp(), t1.timestamp()
    values = [v for pts in lines.values() for _, v in pts]
    lo, hi = min(0.0, min(values)), max(values)
    if hi <= lo:
        hi = lo + 1.0
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + pw * (t - a) / (b - a)

    def y(v: float) -> float:
        return TOP + ph * (1 - (v - lo) / (hi - lo))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {W} {H}" '
           f'width="{W}" height="{H}" role="img" data-metric="{escape(km.name)}" '
           f'aria-label="{escape(km.title)} ({escape(km.unit)})">']
    for frac in (0.0, 0.5, 1.0):
        v = lo + (hi - lo) * frac
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                   'stroke="#e4e8ee"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end" '
                   f'font-size="11" fill="#6b7585">{escape(fmt(v, km.unit))}</text>')
    for t, anchor in ((a, "start"), ((a + b) / 2, "middle"), (b, "end")):
        label = dt.datetime.fromtimestamp(t, dt.UTC).strftime("%m-%d %H:%M")
        out.append(f'<text x="{x(t):.1f}" y="{H - 4}" text-anchor="{anchor}" font-size="11" '
                   f'fill="#6b7585">{label}</text>')
    for i, (name, pts) in enumerate(lines.items()):
        color = COLORS[i % len(COLORS)]
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in pts)
        out.append(f'<polyline class="series" fill="none" stroke="{color}" stroke-width="1.6" '
                   f'points="{path}"><title>{escape(name)}</title></polyline>')
        if len(pts) == 1:
            t, v = pts[0]
            out.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2.5" fill="{color}"/>')
        if len(lines) > 1:
            out.append(f'<text x="{LEFT + 8 + 120 * (i % 4)}" y="{TOP + 12 + 13 * (i // 4)}" '
                       f'font-size="11" fill="{color}">{escape(name[:18])}</text>')
    axis = TOP + ph
    out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{axis}" y2="{axis}" stroke="#9aa3b0"/>')
    for p in points:
        if not p.findings:
            continue
        worst = "critical" if any(s == "critical" for s, _ in p.findings) else "warning"
        codes = ", ".join(sorted({c for _, c in p.findings}))
        xp = x(p.at.timestamp())
        out.append(f'<line class="mark mark-{worst}" x1="{xp:.1f}" x2="{xp:.1f}" '
                   f'y1="{axis + 2}" y2="{axis + 12}" stroke="{MARK[worst]}" stroke-width="2">'
                   f'<title>{escape(p.at.strftime("%Y-%m-%d %H:%M:%S"))} {worst}: '
                   f'{escape(codes)}</title></line>')
    out.append("</svg>")
    return "".join(out)
