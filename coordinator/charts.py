"""Charts a person can read, drawn as inline SVG in Python, for the offline reports and the web pages alike.

Every chart here has axes with units and ticks, a legend wherever colour means something, a text alternative
(``role="img"`` with ``<title>`` and ``<desc>``) and the same numbers as a table beside it (:func:`data_table`).
Numbers are rounded for people (ε 1.00, not 0.9999994864512444). No chart uses a script, a style attribute or a
``url(...)`` reference, so the same markup works under the web pages' strict Content-Security-Policy and in a
report opened offline. The cross-sector forest plot (``coordinator.reports_cross_sector``) draws its log axis
itself and takes its number formats from here.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

__all__ = ["PALETTE", "Axis", "budget_bar", "count_text", "data_table", "epsilon_text", "figure", "finite",
           "heatmap", "number_text", "percent_text", "ratio_text", "signed_text", "step_line", "band_panel",
           "coefficient_plot", "nice_ticks", "time_ticks"]

#: colour-blind-safe series colours (Okabe–Ito), dark enough for thin lines on white
PALETTE = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9"]
_INK, _MUTED, _GRID = "#222", "#555", "#ddd"
_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


# -- numbers for people ------------------------------------------------------------------------------------------

def finite(v: Any) -> TypeGuard[float]:
    """A finite number (JSON gives no infinity, but a hand-made result or an overflow can)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _scientific(v: float) -> str:
    exponent = math.floor(math.log10(abs(v)))
    mantissa = v / 10**exponent
    if round(abs(mantissa), 1) >= 10:   # 9.96 rounds up to the next power
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{mantissa:.1f}×10{str(exponent).translate(_SUPERSCRIPT)}".replace("-", "−")


def ratio_text(v: Any) -> str:
    """A positive ratio, e.g. 2.31, 0.47, 12.5, 1,234; tiny and huge ones as 7.2×10⁶."""
    if not finite(v):
        return "∞" if v == math.inf else "n/a"
    if v <= 0:
        return "0"
    if v >= 1e4 or v < 1e-3:
        return _scientific(v)
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}" if v >= 0.1 else f"{v:.2g}"


def signed_text(v: Any, digits: int = 2) -> str:
    """A number that can be negative (RERI, z, a coefficient), with a real minus sign."""
    if not finite(v):
        return "n/a"
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 10**-digits):
        return _scientific(v)
    text = f"{v:,.0f}" if abs(v) >= 100 else f"{v:.{digits}f}"
    return text.replace("-", "−")


def count_text(v: Any) -> str:
    return f"{v:,.0f}".replace("-", "−") if finite(v) else "n/a"


def percent_text(v: Any) -> str:
    """A share as a percentage: 35.2 %, < 0.1 %."""
    if not finite(v):
        return "n/a"
    if 0 < v < 0.001:
        return "< 0.1 %"
    return f"{100 * v:.1f} %"


def epsilon_text(v: Any) -> str:
    """ε as people read it: 1.00, 0.50, 12.3; a tiny one as 0.0012."""
    if not finite(v):
        return "n/a"
    if v == 0:
        return "0"
    if abs(v) < 0.01:
        return f"{v:.2g}"
    return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


def number_text(v: Any) -> str:
    """A measured quantity (residents, a probability): 3 significant digits, thousands separated."""
    if not finite(v):
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}".replace("-", "−")
    if v == 0:
        return "0"
    return f"{v:.3g}".replace("-", "−")


# -- axes --------------------------------------------------------------------------------------------------------

def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 × a power of ten) covering [lo, hi]; the first and last enclose it."""
    if not (finite(lo) and finite(hi)):
        return [0.0, 1.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw - 1e-12)
    first = math.floor(lo / step + 1e-9) * step
    last = math.ceil(hi / step - 1e-9) * step
    n = int(round((last - first) / step))
    return [round(first + i * step, 12) for i in range(n + 1)]


def _tick_label(v: float, ticks: Sequence[float]) -> str:
    """A tick's label with as many decimals as the step between ticks needs (0.25 → 2, 5 → 0)."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    decimals = 0
    while decimals < 9 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-6:
        decimals += 1
    return f"{v:,.{decimals}f}".replace("-", "−")


def time_ticks(start: dt.datetime, end: dt.datetime, count: int = 4) -> list[tuple[dt.datetime, str]]:
    """Evenly spaced instants from ``start`` to ``end`` with labels whose precision fits the span."""
    span = max((end - start).total_seconds(), 1.0)
    fmt = "%d %b %Y" if span > 2 * 86400 else ("%d %b %H:%M" if span > 6 * 3600 else "%H:%M:%S" if span < 600 else "%H:%M")
    return [(start + dt.timedelta(seconds=span * i / (count - 1)),
             (start + dt.timedelta(seconds=span * i / (count - 1))).strftime(fmt)) for i in range(count)]


@dataclass(frozen=True)
class Axis:
    """A linear axis: data values ``lo``..``hi`` onto pixels ``a``..``b`` (b < a for a y axis)."""

    lo: float
    hi: float
    a: float
    b: float

    def __call__(self, v: float) -> float:
        span = (self.hi - self.lo) or 1.0
        return self.a + (self.b - self.a) * (min(max(v, self.lo), self.hi) - self.lo) / span


def _x_axis(x: Axis, y0: float, ticks: Sequence[tuple[float, str]], label: str) -> str:
    parts = [f'<line x1="{x.a:.1f}" y1="{y0:.1f}" x2="{x.b:.1f}" y2="{y0:.1f}" stroke="{_INK}"/>']
    for value, text in ticks:
        px = x(value)
        parts.append(f'<line x1="{px:.1f}" y1="{y0:.1f}" x2="{px:.1f}" y2="{y0 + 5:.1f}" stroke="{_INK}"/>'
                     f'<text class="tick" x="{px:.1f}" y="{y0 + 18:.1f}" font-size="11" text-anchor="middle" '
                     f'fill="{_INK}">{html.escape(text)}</text>')
    parts.append(f'<text x="{(x.a + x.b) / 2:.1f}" y="{y0 + 36:.1f}" font-size="12" text-anchor="middle" '
                 f'fill="{_INK}">{html.escape(label)}</text>')
    return "".join(parts)


def _y_axis(y: Axis, x0: float, x1: float, ticks: Sequence[float], label: str) -> str:
    parts = [f'<line x1="{x0:.1f}" y1="{y.a:.1f}" x2="{x0:.1f}" y2="{y.b:.1f}" stroke="{_INK}"/>']
    for value in ticks:
        py = y(value)
        parts.append(f'<line x1="{x0:.1f}" y1="{py:.1f}" x2="{x1:.1f}" y2="{py:.1f}" stroke="{_GRID}"/>'
                     f'<line x1="{x0 - 5:.1f}" y1="{py:.1f}" x2="{x0:.1f}" y2="{py:.1f}" stroke="{_INK}"/>'
                     f'<text class="tick" x="{x0 - 8:.1f}" y="{py + 4:.1f}" font-size="11" text-anchor="end" '
                     f'fill="{_INK}">{html.escape(_tick_label(value, ticks))}</text>')
    parts.append(f'<text x="{x0 - 8:.1f}" y="{y.b - 12:.1f}" font-size="12" text-anchor="start" fill="{_INK}">'
                 f"{html.escape(label)}</text>")
    return "".join(parts)


def _swatch(x: float, y: float, colour: str, text: str, kind: str = "rect") -> str:
    """A legend entry: a filled square (``rect``), a pale square (``band``), a line or a dashed line."""
    if kind in ("rect", "band"):
        opacity = ' fill-opacity="0.28"' if kind == "band" else ""
        mark = (f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="12" height="12" fill="{colour}"{opacity} stroke="{_INK}" '
                'stroke-width="0.5"/>')
    else:
        dash = ' stroke-dasharray="5 3"' if kind == "dash" else ""
        mark = (f'<line x1="{x:.1f}" y1="{y - 3:.1f}" x2="{x + 14:.1f}" y2="{y - 3:.1f}" stroke="{colour}" '
                f'stroke-width="2.5"{dash}/>')
    return f'{mark}<text x="{x + 18:.1f}" y="{y + 1:.1f}" font-size="11" fill="{_INK}">{html.escape(text)}</text>'


# -- figure and table --------------------------------------------------------------------------------------------

def figure(kind: str, width: float, height: float, title: str, desc: str, body: str, caption: str = "",
           table: str = "") -> str:
    """An SVG chart with its text alternative (role img, title, desc), a caption and its data table."""
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" role="img"><title>{html.escape(title)}</title>'
           f"<desc>{html.escape(desc)}</desc>{body}</svg>")
    cap = f"<figcaption>{html.escape(caption or title)}</figcaption>"
    return f'<figure class="plot {kind}">{svg}{cap}{table}</figure>'


def data_table(summary: str, header: Sequence[str], rows: Sequence[Sequence[Any]], numeric_from: int = 1) -> str:
    """The chart's numbers as a table, folded under a summary (open it with the keyboard or a click; no script)."""
    head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in header)
    body = "".join("<tr>" + "".join(
        (f'<td class="num">{html.escape(str(c))}</td>' if i >= numeric_from else f"<td>{html.escape(str(c))}</td>")
        for i, c in enumerate(row)) + "</tr>" for row in rows)
    return (f'<details class="chart-data"><summary>{html.escape(summary)}</summary>'
            f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></details>')


# -- the charts --------------------------------------------------------------------------------------------------

def _shade(p: float) -> str:
    s = int(255 - 215 * min(max(p, 0.0), 1.0))
    return f"rgb({s},{s},255)"


def heatmap(title: str, matrix: Sequence[Sequence[float]], labels: Sequence[Any], row_title: str = "from segment",
            column_title: str = "to segment", value_title: str = "probability") -> str:
    """A square matrix of probabilities: segment numbers on both axes, a colour legend, and the matrix as a table."""
    k = len(matrix)
    cell = max(8.0, min(18.0, 300 / max(k, 1)))
    left, top = 62.0, 44.0
    size = cell * k
    every = 1 if cell >= 14 else 2
    parts = [f'<text x="{left + size / 2:.1f}" y="14" font-size="12" text-anchor="middle" fill="{_INK}">'
             f"{html.escape(column_title)} →</text>",
             f'<text x="14" y="{top + size / 2:.1f}" font-size="12" text-anchor="middle" fill="{_INK}" '
             f'transform="rotate(-90 14 {top + size / 2:.1f})">← {html.escape(row_title)}</text>']
    for i, label in enumerate(labels):
        if i % every == 0 or i == k - 1:
            parts.append(f'<text class="tick" x="{left + (i + 0.5) * cell:.1f}" y="{top - 6:.1f}" font-size="10" '
                         f'text-anchor="middle" fill="{_INK}">{html.escape(str(label))}</text>'
                         f'<text class="tick" x="{left - 5:.1f}" y="{top + (i + 0.5) * cell + 3.5:.1f}" font-size="10" '
                         f'text-anchor="end" fill="{_INK}">{html.escape(str(label))}</text>')
    for i, row in enumerate(matrix):
        for j, p in enumerate(row):
            parts.append(f'<rect x="{left + j * cell:.1f}" y="{top + i * cell:.1f}" width="{cell:.1f}" '
                         f'height="{cell:.1f}" fill="{_shade(p)}"><title>{html.escape(str(labels[i]))} → '
                         f"{html.escape(str(labels[j]))}: {p:.3f}</title></rect>")
    parts.append(f'<rect x="{left}" y="{top}" width="{size:.1f}" height="{size:.1f}" fill="none" stroke="{_INK}" '
                 'stroke-width="0.5"/>')
    # the colour legend: six swatches from 0 to 1
    ly = top + size + 16
    parts.append(f'<text x="{left:.1f}" y="{ly + 10:.1f}" font-size="11" fill="{_INK}">'
                 f"{html.escape(value_title)}:</text>")
    for n, p in enumerate((0.0, 0.2, 0.4, 0.6, 0.8, 1.0)):
        x = left + 70 + n * 38
        parts.append(f'<rect class="legend" x="{x:.1f}" y="{ly:.1f}" width="14" height="14" fill="{_shade(p)}" '
                     f'stroke="{_INK}" stroke-width="0.5"/><text x="{x + 17:.1f}" y="{ly + 11:.1f}" font-size="10" '
                     f'fill="{_INK}">{p:.1f}</text>')
    width, height = max(left + size + 12, left + 70 + 6 * 38), ly + 24
    strongest = sorted(((p, i, j) for i, row in enumerate(matrix) for j, p in enumerate(row) if i != j), reverse=True)
    stay = [row[i] for i, row in enumerate(matrix) if i < len(row)]
    desc = (f"Heat map of a {k} by {k} matrix: row = {row_title}, column = {column_title}, darker blue = higher "
            f"{value_title} (0 to 1). Staying in the same segment has probability "
            f"{min(stay, default=0):.2f} to {max(stay, default=0):.2f}"
            + (f"; the most likely move is {labels[strongest[0][1]]} → {labels[strongest[0][2]]} "
               f"({strongest[0][0]:.2f})" if strongest else "") + ". The data table below lists every cell.")
    table = data_table(f"Data table: {title}", [f"{row_title} ↓ / {column_title} →", *map(str, labels)],
                       [[labels[i], *(f"{p:.3f}" for p in row)] for i, row in enumerate(matrix)])
    return figure("heatmap", width, height, title, desc, "".join(parts), title, table)


def band_panel(title: str, years: Sequence[Any], estimate: Sequence[float], lower: Sequence[float],
               upper: Sequence[float], unit: str, colour: str = PALETTE[0], x_title: str = "year") -> str:
    """One series with its 95 % band over the years; the y axis fits the band so that the band is visible."""
    width, height, left, right, top, bottom = 420.0, 262.0, 78.0, 16.0, 52.0, 52.0
    lo, hi = min([*lower, *estimate]), max([*upper, *estimate])
    pad = (hi - lo) * 0.1 or abs(hi) * 0.05 or 1.0
    ticks = nice_ticks(max(lo - pad, 0.0) if lo >= 0 else lo - pad, hi + pad)
    x = Axis(0, max(len(years) - 1, 1), left, width - right)
    y = Axis(ticks[0], ticks[-1], height - bottom, top)
    step = max(1, math.ceil(len(years) / 6))
    xticks = [(float(i), str(v)) for i, v in enumerate(years) if i % step == 0 or i == len(years) - 1]
    band = (" ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(upper)) + " "
            + " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in reversed(list(enumerate(lower)))))
    line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(estimate))
    parts = [_y_axis(y, left, width - right, ticks, unit),
             f'<polygon class="band" points="{band}" fill="{colour}" fill-opacity="0.28" stroke="{colour}" '
             'stroke-width="1" stroke-dasharray="4 3"/>',
             f'<polyline class="estimate" points="{line}" fill="none" stroke="{colour}" stroke-width="2.5"/>',
             _x_axis(x, height - bottom, xticks, x_title),
             _swatch(left + 4, 16, colour, "estimate", "line"),
             _swatch(left + 90, 16, colour, "95 % band (privacy noise and sampling)", "band")]
    starts = ticks[0] != 0
    desc = (f"Line chart of {title} over {x_title} {years[0]} to {years[-1]}, in {unit}: the estimate goes from "
            f"{number_text(estimate[0])} to {number_text(estimate[-1])}; the 95 % band at the end runs from "
            f"{number_text(lower[-1])} to {number_text(upper[-1])}."
            + (f" The vertical axis starts at {_tick_label(ticks[0], ticks)}, not at zero." if starts else ""))
    table = data_table(f"Data table: {title}", ["year", f"estimate ({unit})", "lower 95 %", "upper 95 %"],
                       [[yr, number_text(e), number_text(lo_), number_text(hi_)]
                        for yr, e, lo_, hi_ in zip(years, estimate, lower, upper)])
    return figure("projection", width, height, title, desc, "".join(parts), title, table)


def coefficient_plot(title: str, rows: Sequence[tuple[str, float, float, float]], unit: str) -> str:
    """Estimates with their 95 % intervals, one row each, on a linear axis with a line at 0 (no association)."""
    label_w, width, top, row = 210.0, 640.0, 46.0, 24.0
    values = [v for _, e, lo, hi in rows for v in (e, lo, hi) if finite(v)] or [0.0]
    ticks = nice_ticks(min(0.0, *values), max(0.0, *values), 6)
    x = Axis(ticks[0], ticks[-1], label_w, width - 20)
    bottom = top + row * len(rows) + 4
    parts = [f'<line class="zero" x1="{x(0):.1f}" y1="{top - 6:.1f}" x2="{x(0):.1f}" y2="{bottom:.1f}" '
             f'stroke="{_INK}" stroke-dasharray="5 3"/>',
             f'<text x="{x(0):.1f}" y="{top - 10:.1f}" font-size="11" text-anchor="middle" fill="{_INK}">'
             "0 = no association</text>",
             _swatch(label_w - 200, 14, PALETTE[1], "estimate", "line"),
             _swatch(label_w - 110, 14, PALETTE[0], "95 % interval", "line")]
    for value, _ in ((t, None) for t in ticks):
        parts.append(f'<line x1="{x(value):.1f}" y1="{top:.1f}" x2="{x(value):.1f}" y2="{bottom:.1f}" '
                     f'stroke="{_GRID}"/>')
    for i, (name, value, lo, hi) in enumerate(rows):
        yy = top + row * i + row / 2
        parts.append(f'<text x="{label_w - 10:.1f}" y="{yy + 4:.1f}" font-size="11" text-anchor="end" '
                     f'fill="{_INK}">{html.escape(name)}</text>'
                     f'<line x1="{x(lo):.1f}" y1="{yy:.1f}" x2="{x(hi):.1f}" y2="{yy:.1f}" stroke="{PALETTE[0]}" '
                     'stroke-width="2.5"/>'
                     f'<circle class="coefficient" cx="{x(value):.1f}" cy="{yy:.1f}" r="4.5" fill="{PALETTE[1]}">'
                     f"<title>{html.escape(name)}: {signed_text(value)} ({signed_text(lo)} to {signed_text(hi)})"
                     "</title></circle>")
    parts.append(_x_axis(x, bottom, [(t, _tick_label(t, ticks)) for t in ticks], unit))
    clear = sum(1 for _, _, lo, hi in rows if lo > 0 or hi < 0)
    desc = (f"Dot plot of {len(rows)} estimates with 95 % intervals on a scale of {unit}, from "
            f"{_tick_label(ticks[0], ticks)} to {_tick_label(ticks[-1], ticks)}; {clear} of the {len(rows)} intervals "
            "exclude 0. The data table below gives every value.")
    table = data_table(f"Data table: {title}", ["term", "estimate", "lower 95 %", "upper 95 %"],
                       [[n, signed_text(v), signed_text(lo), signed_text(hi)] for n, v, lo, hi in rows])
    return figure("coefficients", width, bottom + 48, title, desc, "".join(parts), title, table)


def budget_bar(name: str, before: float, this: float, cap: float, words: str) -> str:
    """A dataset's budget as one bar: spent by other studies, this study, what remains — shares of the cap in ρ
    (which adds up across studies; ε does not) — with the ε figures in ``words``."""
    width, height, left, right = 370.0, 62.0, 16.0, 20.0
    x = Axis(0.0, 1.0, left, width - right)
    total = max(cap, before + this, 1e-12)
    a, b = before / total, min(1.0, (before + this) / total)
    over = before + this > cap
    parts = [f'<rect class="spent" x="{x(0):.1f}" y="8" width="{x(a) - x(0):.1f}" height="18" fill="#6b6b6b"/>',
             f'<rect class="this-study" x="{x(a):.1f}" y="8" width="{max(x(b) - x(a), 1.5):.1f}" height="18" '
             f'fill="{PALETTE[4]}" stroke="{_INK}" stroke-width="0.5"/>',
             f'<rect class="remaining" x="{x(b):.1f}" y="8" width="{max(x(1) - x(b), 0):.1f}" height="18" '
             f'fill="#fff" stroke="{_INK}" stroke-width="0.5"/>']
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{x(t):.1f}" y1="26" x2="{x(t):.1f}" y2="31" stroke="{_INK}"/>'
                     f'<text class="tick" x="{x(t):.1f}" y="43" font-size="10" text-anchor="middle" fill="{_INK}">'
                     f"{100 * t:.0f} %</text>")
    parts.append(f'<text x="{x(0.5):.1f}" y="58" font-size="10" text-anchor="middle" fill="{_INK}">share of the budget '
                 "(in ρ, which adds up)</text>")
    desc = (f"Bar of the budget of {name}: {percent_text(before / total)} spent by earlier studies, "
            f"{percent_text(this / total)} by this study, {percent_text(max(cap - before - this, 0) / total)} left"
            + (" — this study would pass the cap." if over else ". ") + words)
    return figure("budget", width, height, f"Budget of {name}", desc, "".join(parts), words)


def step_line(title: str, points: Sequence[tuple[dt.datetime, float, str]], caps: Sequence[tuple[dt.datetime, float]],
              end: dt.datetime, unit: str = "ε spent") -> str:
    """Cumulative spending over time as a step line, the cap in force as a dashed step line, and a marker at
    every charge (each labelled with its study)."""
    width, height, left, right, top, bottom = 640.0, 280.0, 70.0, 24.0, 44.0, 56.0
    start = min([t for t, _, _ in points] + [t for t, _ in caps] + [end])
    if end <= start:
        end = start + dt.timedelta(minutes=1)
    values = [v for _, v, _ in points] + [c for _, c in caps] + [0.0]
    ticks = nice_ticks(0.0, max(values) * 1.05 or 1.0)
    x = Axis(0.0, (end - start).total_seconds(), left, width - right)
    y = Axis(ticks[0], ticks[-1], height - bottom, top)

    def px(t: dt.datetime) -> float:
        return x((t - start).total_seconds())

    def steps(series: Sequence[tuple[dt.datetime, float]]) -> str:
        out, level = [f"{px(start):.1f},{y(0):.1f}"] if series and series[0][0] > start else [], 0.0
        for t, v in series:
            out += [f"{px(t):.1f},{y(level):.1f}", f"{px(t):.1f},{y(v):.1f}"]
            level = v
        out.append(f"{px(end):.1f},{y(level):.1f}")
        return " ".join(out)

    parts = [_y_axis(y, left, width - right, ticks, unit)]
    if caps:
        parts.append(f'<polyline class="cap" points="{steps(caps)}" fill="none" stroke="{PALETTE[1]}" '
                     'stroke-width="2" stroke-dasharray="6 4"/>')
    parts.append(f'<polyline class="spent" points="{steps([(t, v) for t, v, _ in points])}" fill="none" '
                 f'stroke="{PALETTE[0]}" stroke-width="2.5"/>')
    for n, (t, v, label) in enumerate(points):
        parts.append(f'<circle class="approval" cx="{px(t):.1f}" cy="{y(v):.1f}" r="5" fill="{PALETTE[0]}" '
                     f'stroke="#fff" stroke-width="1.5"><title>{html.escape(label)}: ε {epsilon_text(v)} spent after '
                     "it</title></circle>"
                     f'<text x="{px(t) + (-7 if px(t) > (x.a + x.b) / 2 else 7):.1f}" y="{y(v) - 7 - 11 * (n % 2):.1f}" '
                     f'font-size="10" fill="{_INK}" text-anchor="{"end" if px(t) > (x.a + x.b) / 2 else "start"}">'
                     f"{html.escape(label)}</text>")
    parts.append(_x_axis(x, height - bottom, [((t - start).total_seconds(), s) for t, s in time_ticks(start, end)],
                         "time (UTC)"))
    parts += [_swatch(left + 4, 16, PALETTE[0], "ε spent", "line"), _swatch(left + 100, 16, PALETTE[1], "cap", "dash"),
              f'<circle cx="{left + 170:.1f}" cy="13" r="5" fill="{PALETTE[0]}"/><text x="{left + 180:.1f}" y="17" '
              f'font-size="11" fill="{_INK}">approval (charge), with its study</text>']
    last = points[-1][1] if points else 0.0
    cap_now = caps[-1][1] if caps else None
    desc = (f"Step chart of {unit} over time: {len(points)} charge(s), ε {epsilon_text(last)} spent in all"
            + (f" of a cap of ε {epsilon_text(cap_now)}" if cap_now is not None else "") + ". The table beside it "
            "lists every charge.")
    return figure("step", width, height, title, desc, "".join(parts), title)
