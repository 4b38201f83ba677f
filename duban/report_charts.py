"""The roll-up's charts as inline SVG (no JavaScript, no external resource), drawn for a phone.

Each chart is drawn in a narrow coordinate system (:data:`WIDTH` units wide, about a phone's
width) with text of at least :data:`MIN_TEXT` units, so that on a 360–414 px screen, where the
chart is shown about 1:1, no label is smaller than 12 px; a desktop page shows them side by side
at the same size.  A row's label sits above its bar, so long names (牵头单位, 育人体系) are not cut
to a few characters.  The report (:mod:`duban.report`), the dashboard and the printed 通报 use them.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

import pandas as pd

from duban.rollup import pct
from duban.vocabulary import Light

WIDTH = 340  # the chart's width in SVG units (shown about 1:1 on a phone)
MIN_TEXT = 14  # the smallest text in a chart, in SVG units (≥ 12 px on a 300 px wide column)
LABEL_CHARS = 22  # a row's label is cut after this many characters (the full name is in its tooltip)
COLOUR_WORDS: dict[str, str] = {light: light.label for light in Light}  # 红灯 黄灯 绿灯
RAG_COLOURS: dict[str, str] = {Light.RED: "#dc2626", Light.YELLOW: "#f59e0b", Light.GREEN: "#16a34a", "no_light": "#9ca3af"}
RAG_LABELS: dict[str, str] = {**COLOUR_WORDS, "no_light": "已办结"}
TITLE_SIZE = 16


def svg_text(
    x: float, y: float, text: str, *, size: int = MIN_TEXT, anchor: str = "start", fill: str = "#374151", weight: str = "normal"
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{max(size, MIN_TEXT)}" text-anchor="{anchor}" fill="{fill}" '
        f'font-weight="{weight}">{escape(text)}</text>'
    )


def _svg(title: str, width: int, height: float, body: list[str]) -> str:
    """The chart: its title on top, then ``body`` (drawn below y = 24)."""
    head = (
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" height="{height:.0f}" '
        f'viewBox="0 0 {width} {height:.0f}">'
    )
    return "".join([head, svg_text(0, 18, title, size=TITLE_SIZE, weight="bold", fill="#111827"), *body, "</svg>"])


def _legend(parts: list[str], y: float, entries: list[tuple[str, str]]) -> float:
    """Legend entries left to right, wrapping to a new line when the width is used up; returns
    the y below the legend."""
    x = 0.0
    for name, colour in entries:
        w = 14 + MIN_TEXT * len(name) + 12
        if x and x + w > WIDTH:
            x, y = 0.0, y + MIN_TEXT + 8
        parts.append(f'<rect x="{x:.1f}" y="{y - 11:.1f}" width="11" height="11" fill="{colour}"/>')
        parts.append(svg_text(x + 14, y, name, fill="#374151"))
        x += w
    return y + 14


def clip(text: Any, n: int = LABEL_CHARS) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def chart_rag(title: str, rows: list[tuple[str, dict[str, int]]], *, width: int = WIDTH) -> str:
    """Stacked bars: red / yellow / green / done per row (counts of tasks), the label above each bar."""
    if not rows:
        return ""
    bar_h, row_h = 14, 44
    legend = [(RAG_LABELS[k], RAG_COLOURS[k]) for k in RAG_COLOURS]
    parts: list[str] = []
    top = _legend(parts, 44, legend) + 6
    inner = width - 40
    biggest = max(sum(c.values()) for _, c in rows) or 1
    for i, (label, counts) in enumerate(rows):
        y = top + i * row_h
        parts.append(svg_text(0, y + MIN_TEXT, clip(label), fill="#111827"))
        x = 0.0
        for key in RAG_COLOURS:
            n = counts.get(key, 0)
            if n:
                w = inner * n / biggest
                parts.append(
                    f'<rect x="{x:.1f}" y="{y + 20}" width="{w:.1f}" height="{bar_h}" fill="{RAG_COLOURS[key]}">'
                    f"<title>{escape(str(label))}：{RAG_LABELS[key]} {n} 项</title></rect>"
                )
                x += w
        parts.append(svg_text(x + 4, y + 20 + bar_h - 1, str(sum(counts.values())), fill="#6b7280"))
    return _svg(title, width, top + len(rows) * row_h + 4, parts)


def chart_rates(
    title: str,
    rows: list[tuple[str, float | None, float | None]],
    *,
    width: int = WIDTH,
    names: tuple[str, str] = ("节点完成率", "按期完成率"),
) -> str:
    """Two bars per row (rates 0–1), e.g. completion and on-time rate, the label above them."""
    if not rows:
        return ""
    bar_h, row_h = 14, 58
    colours = ("#2563eb", "#16a34a")
    parts: list[str] = []
    top = _legend(parts, 44, list(zip(names, colours, strict=True))) + 6
    inner = width - 70
    for i, (label, a, b) in enumerate(rows):
        y = top + i * row_h
        parts.append(svg_text(0, y + MIN_TEXT, clip(label), fill="#111827"))
        for k, v in enumerate((a, b)):
            yy = y + 19 + k * (bar_h + 2)
            if v is None or (isinstance(v, float) and math.isnan(v)):
                parts.append(svg_text(2, yy + bar_h - 1, "—", fill="#9ca3af"))
                continue
            w = max(inner * float(v), 0.5)
            parts.append(
                f'<rect x="0" y="{yy}" width="{w:.1f}" height="{bar_h}" fill="{colours[k]}">'
                f"<title>{escape(str(label))}：{names[k]} {pct(float(v))}</title></rect>"
            )
            parts.append(svg_text(w + 4, yy + bar_h - 1, pct(float(v)), fill="#374151"))
    return _svg(title, width, top + len(rows) * row_h, parts)


def chart_scores(title: str, rows: list[tuple[str, float]], *, width: int = WIDTH) -> str:
    """Bars of scores 0–100, coloured by band, the label above each bar."""
    if not rows:
        return ""
    bar_h, row_h = 14, 42
    parts: list[str] = []
    top = 30
    inner = width - 50
    for i, (label, score) in enumerate(rows):
        y = top + i * row_h
        colour = "#16a34a" if score >= 90 else "#f59e0b" if score >= 75 else "#dc2626"
        w = max(inner * score / 100, 0.5)
        parts.append(svg_text(0, y + MIN_TEXT, clip(label), fill="#111827"))
        parts.append(
            f'<rect x="0" y="{y + 19}" width="{w:.1f}" height="{bar_h}" fill="{colour}">'
            f"<title>{escape(str(label))}：{score:.1f} 分</title></rect>"
        )
        parts.append(svg_text(w + 4, y + 19 + bar_h - 1, f"{score:.1f}"))
    return _svg(title, width, top + len(rows) * row_h, parts)


def chart_trend(title: str, frame: pd.DataFrame, *, width: int = WIDTH, height: int = 250) -> str:
    """Lines over days: completion and on-time rate (left axis, %), red tasks (right axis)."""
    if frame.empty:
        return ""
    parts: list[str] = []
    series_names = [("节点完成率", "#2563eb"), ("按期完成率", "#16a34a"), ("红灯任务（右轴）", "#dc2626")]
    top = _legend(parts, 44, series_names) + 8
    left, right, bottom = 46, 30, 26
    inner_w, inner_h = width - left - right, height - top - bottom
    days = list(frame["day"])
    n = len(days)

    def x(i: int) -> float:
        return left + (inner_w * i / (n - 1) if n > 1 else inner_w / 2)

    reds = [int(v) for v in frame["red"]]
    red_max = max(*reds, 1)
    for tick in (0, 0.5, 1):
        y = top + inner_h * (1 - tick)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + inner_w}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(svg_text(left - 4, y + 5, f"{int(tick * 100)}%", anchor="end", fill="#6b7280"))
        parts.append(svg_text(left + inner_w + 4, y + 5, f"{red_max * tick:.3g}", fill="#dc2626"))
    values = [list(frame["completion_rate"]), list(frame["on_time_rate"]), reds]
    for (name, colour), vals, scale in zip(series_names, values, (1.0, 1.0, float(red_max)), strict=True):
        points = [
            (x(i), top + inner_h * (1 - float(v) / scale))
            for i, v in enumerate(vals)
            if v is not None and not (isinstance(v, float) and math.isnan(v))
        ]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"><title>{escape(name)}</title></polyline>'
            )
        for px, py in points:
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{colour}"/>')
    step = max(1, math.ceil(n / 4))
    shown = sorted({*range(0, n, step), n - 1})
    if len(shown) > 2 and shown[-1] - shown[-2] < step / 2:
        shown.pop(-2)  # the last label would run into the one before
    for i in shown:
        parts.append(svg_text(x(i), height - 6, _day(days[i]), anchor="middle", fill="#6b7280"))
    return _svg(title, width, height, parts)


def _day(value: Any) -> str:
    return str(value.isoformat() if hasattr(value, "isoformat") else value)[5:10]
