"""The report section of a cross-sector count study (``outputs["kind"] == "cross_sector_counts"``).

A plain-language box (cohort, outcome, what was released and how noisy each kind of count is), a
forest plot of the strongest factors' odds ratios on a log axis, the same rows as a table, a ranked
table of factor pairs, and the CSV tables ``factors.csv`` and ``pairs.csv`` with every factor and pair.
Everything is read from the result JSON (see ``federation/vertical/results.py``); every number in it is
post-processing of differentially private releases.

Intervals can be astronomically wide when the privacy noise swamps a count (the analysis keeps their
log-scale bounds finite at e^±700), so the plot's axis follows the estimates and stops short of such
ends: an arrowhead at the edge marks an interval that runs past it, and the table gives the numbers.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

from coordinator.charts import count_text, finite, percent_text, ratio_text, signed_text

__all__ = ["TOP", "cross_sector_section"]

#: a CSV table: header and rows
Table = tuple[list[str], list[list[Any]]]

#: factors in the plot and table, pairs in the table (the CSV files hold them all)
TOP = 20
#: the plot's axis never runs past these odds ratios (1/limit … limit)
_AXIS_LIMIT = 1000.0
#: an interval may widen the axis at most this factor past the estimates (and 1)
_REACH = 8.0
#: at most this many octaves, the axis ticks at powers of 2; past that at powers of 10
_OCTAVES_FOR_BASE_2 = 7.0

_CLEAR, _UNCLEAR = "#b2182b", "#666"



# -- numbers for people (the formats are coordinator.charts'; these names keep the module's own spelling) --------

_finite, _ratio, _signed, _count, _percent = finite, ratio_text, signed_text, count_text, percent_text


def _share(v: Any) -> str:
    """Share of a variance, e.g. 37 %, > 99.9 %."""
    if not _finite(v):
        return "n/a"
    if v > 0.999:
        return "> 99.9 %"
    return "< 0.1 %" if 0 < v < 0.001 else f"{100 * v:.1f} %"


def _spread(v: float) -> str:
    """A noise sd, rounded: 120, 17, 2.5"""
    return f"{v:,.0f}" if v >= 10 else f"{v:.2g}"


def _sd(v: float) -> str:
    return f"± {_spread(v)}"


@dataclass(frozen=True)
class _Interval:
    estimate: float
    lower: float
    upper: float

    @classmethod
    def of(cls, measure: dict[str, Any] | None) -> _Interval:
        m = measure or {}
        return cls(float(m.get("estimate", math.nan)), float(m.get("lower", math.nan)), float(m.get("upper", math.nan)))

    def parts(self, log_scale: bool = True) -> tuple[str, str]:
        """The estimate and the bounds in words: ("2.31", "(1.40–3.82)"), or on a linear scale ("0.85",
        "(−0.12 to 1.82)") — "to", as the bounds can carry minus signs."""
        if log_scale:
            return _ratio(self.estimate), f"({_ratio(self.lower)}–{_ratio(self.upper)})"
        return _signed(self.estimate), f"({_signed(self.lower)} to {_signed(self.upper)})"

    def ratio(self) -> str:
        """e.g. 2.31 (1.40–3.82)"""
        return " ".join(self.parts())

    def cell(self, log_scale: bool = True) -> str:
        """HTML for a narrow table cell: the estimate, the interval on a line of its own."""
        estimate, bounds = self.parts(log_scale)
        return f"{html.escape(estimate)}<br><span class='ci'>{html.escape(bounds)}</span>"

    def excludes(self, value: float) -> bool:
        return (_finite(self.lower) and self.lower > value) or (_finite(self.upper) and self.upper < value)


def _short(dataset: str) -> str:
    """``espoo/child_health`` -> ``child_health`` (one municipality's sectors, where space is short)"""
    return dataset.rsplit("/", 1)[-1]


def _ranked_factors(outputs: dict[str, Any]) -> list[dict[str, Any]]:
    factors: dict[str, dict[str, Any]] = outputs.get("factors", {})
    order = [name for name in outputs.get("ranking", []) if name in factors]
    ranked = set(order)
    order += [name for name in factors if name not in ranked]
    return [{**factors[name], "factor": name, "rank": factors[name].get("rank", i + 1)}
            for i, name in enumerate(order)]


# -- the plain-language box --------------------------------------------------------------------------------------

def _by_dataset(scales: dict[str, float]) -> str:
    values = sorted(scales.values())
    if not values:
        return ""
    if round(values[0]) == round(values[-1]):
        return _sd(values[0])
    each = ", ".join(f"{html.escape(_short(d))} {s:,.0f}" for d, s in scales.items())
    return f"{_sd(values[0])} to {values[-1]:,.0f} <span class='sector'>(by sector: {each})</span>"


def _noise_rows(privacy: dict[str, Any], released: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """(kind of count, how many were released, its noise sd in words) from the study's noise scales.

    A count computed under encryption carries two parties' noise (``federation/vertical/run.py``); the
    sd shown is their total, √(σ₁² + σ₂²).
    """
    scales: dict[str, Any] = privacy.get("noise_scales") or {}

    def scale(key: str) -> float:
        value = scales.get(key)
        return float(value) if _finite(value) else math.nan

    cohort, outcome = scale("cohort_size"), scale("outcome")
    pair_node, pair_outcome = scale("factor_nodes_pairs"), scale("outcome_pairs")
    rows: list[tuple[str, Any, str]] = []
    if _finite(cohort):
        rows.append(("the cohort's size", released.get("cohort_size"), _sd(cohort)))
    if _finite(outcome):
        rows.append(("the number of cases", released.get("cases"), _sd(outcome)))
    if scales.get("exposed"):
        rows.append(("cohort members with a factor, one count per factor", released.get("exposed"),
                     _by_dataset(scales["exposed"])))
    if scales.get("factor_nodes") and _finite(outcome):
        rows.append(("cases with a factor, one count per factor (under encryption)", released.get("exposed_cases"),
                     _by_dataset({d: math.hypot(s, outcome) for d, s in scales["factor_nodes"].items()})))
    if _finite(pair_node) and _finite(pair_outcome):
        across = math.hypot(pair_node, pair_outcome)
        rows.append(("cohort members with both factors of a pair", released.get("pair_both"),
                     f"{_sd(pair_node)} within a sector, {_sd(across)} across sectors"))
        rows.append(("cases with both factors of a pair (under encryption)", released.get("pair_both_cases"),
                     _sd(across)))
    return rows


def _noise_table(privacy: dict[str, Any], released: dict[str, Any]) -> str:
    rows = "".join(f"<tr><td>{html.escape(kind)}</td><td class='num'>{_count(n) if _finite(n) else ''}</td>"
                   f"<td>{sd}</td></tr>" for kind, n, sd in _noise_rows(privacy, released))
    if not rows:
        return ""
    return ("<table class='noise'><tr><th>released count</th><th>how many</th><th>noise on each, one standard "
            f"deviation</th></tr>{rows}</table>")


def _caution(factors: list[dict[str, Any]]) -> str:
    shares = sorted(float(f["noise_share"]) for f in factors if _finite(f.get("noise_share")))
    if not shares:
        return ""
    median = shares[len(shares) // 2]
    if median <= 0.5:
        return (f"<li>For the typical factor the privacy noise accounts for {_share(median)} of the uncertainty of its "
                "odds ratio; the rest is ordinary sampling variation.</li>")
    return (f"<li><strong>Read with care:</strong> for the typical factor the privacy noise accounts for "
            f"{_share(median)} of the uncertainty of its odds ratio, so the intervals are wide and the ranking is "
            "rough. A larger cohort or a larger privacy budget narrows them.</li>")


def _plain_box(outputs: dict[str, Any], privacy: dict[str, Any], factors: list[dict[str, Any]]) -> str:
    cohort, outcome = outputs.get("cohort", {}), outputs.get("outcome", {})
    released: dict[str, Any] = outputs.get("released_counts", {})
    ages = cohort.get("ages") or ["?", "?"]
    total = sum(v for v in released.values() if _finite(v))
    size_sd, cases_sd = (_spread(float(v)) for v in (cohort.get("size_noise_sd", 0), outcome.get("cases_noise_sd", 0)))
    items = [
        f"<li><strong>Who was studied:</strong> residents aged {html.escape(str(ages[0]))}–{html.escape(str(ages[-1]))} "
        f"on {html.escape(str(cohort.get('reference_date', '?')))} in {html.escape(str(cohort.get('dataset', '?')))}: "
        f"{_count(cohort.get('size'))} people (a noisy count, noise sd {size_sd}).</li>",
        f"<li><strong>Outcome:</strong> {html.escape(str(outcome.get('definition', '?')))}: "
        + (f"{_count(outcome.get('cases'))} cases (a noisy count, noise sd {cases_sd}).</li>"
           if not _finite(outcome.get("cases")) or float(outcome["cases"]) > 0 else
           f"the noisy count of cases came out at {_count(outcome.get('cases'))} (noise sd {cases_sd}): the noise "
           "outweighs the cases in a town this size, and the tables below say little.</li>"),
        f"<li><strong>What was released:</strong> {_count(total)} noisy counts and nothing else — "
        f"{len(factors)} factors, {len(outputs.get('pairs', []))} pairs of factors; every table, ratio and interval "
        "below is computed from them.</li>",
        f"<li><strong>How factors are ranked:</strong> {html.escape(str(outputs.get('ranking_statistic', '')))}.</li>",
        f"<li><strong>Per-resident scores:</strong> {html.escape(str(outputs.get('per_resident_scores', '')))}.</li>",
    ]
    linkage = (outputs.get("linkage") or {}).get("method")
    if linkage:
        items.append(f"<li><strong>Linking residents across sectors:</strong> {html.escape(str(linkage))}.</li>")
    items.append(_caution(factors))
    epsilon, delta = privacy.get("epsilon"), privacy.get("delta")
    budget = f" (ε {epsilon:.2f}, δ {delta:g} per resident)" if _finite(epsilon) and _finite(delta) else ""
    return (f"<section class='plain' aria-label='the study in plain language'><h3>In plain language</h3><ul>"
            f"{''.join(items)}</ul><p>Every number on this page is a differentially private release{budget} or is "
            "computed from such releases: each released count carries random noise of a known size, so no single "
            f"resident can be told apart.</p>{_noise_table(privacy, released)}</section>")


# -- the forest plot ---------------------------------------------------------------------------------------------

def _axis(intervals: list[_Interval]) -> tuple[float, float, list[float]]:
    """The plot's range and ticks (powers of 2 or of 10): the estimates and 1, plus interval ends within reach."""
    estimates = [i.estimate for i in intervals if _finite(i.estimate) and i.estimate > 0]
    low, high = min([1.0, *estimates]), max([1.0, *estimates])
    lowers = [i.lower for i in intervals if _finite(i.lower) and i.lower > 0]
    uppers = [i.upper for i in intervals if _finite(i.upper)]
    lo = max(min([low, *lowers]), low / _REACH, 1 / _AXIS_LIMIT)
    hi = min(max([high, *uppers]), high * _REACH, _AXIS_LIMIT)
    base = 2.0 if math.log2(hi / lo) <= _OCTAVES_FOR_BASE_2 else 10.0
    # at least one tick either side of 1, so that the line at OR = 1 never sits on the plot's edge
    first = min(math.floor(math.log(lo, base) + 1e-9), -1)
    last = max(math.ceil(math.log(hi, base) - 1e-9), 1)
    return base**first, base**last, [base**k for k in range(first, last + 1)]


@dataclass(frozen=True)
class _Frame:
    """Where things go in the plot: label columns, the log axis between x0 and x1, rows from top."""

    lo: float
    hi: float
    x0: float = 250.0
    x1: float = 690.0
    top: float = 58.0
    row: float = 22.0

    def x(self, v: float) -> float:
        v = min(max(v, self.lo), self.hi)
        return self.x0 + (self.x1 - self.x0) * math.log(v / self.lo) / math.log(self.hi / self.lo)

    def y(self, i: int) -> float:
        return self.top + self.row * i + self.row / 2


def _arrow(x: float, y: float, direction: int, colour: str) -> str:
    """An arrowhead at the axis edge: the interval runs on past it (direction −1 left, +1 right)."""
    tip = x + 8 * direction
    return (f'<polygon class="clipped" points="{x:.1f},{y - 4.5:.1f} {tip:.1f},{y:.1f} {x:.1f},{y + 4.5:.1f}" '
            f'fill="{colour}"/>')


def _forest_row(i: int, row: dict[str, Any], frame: _Frame) -> tuple[str, int]:
    """One factor's row of the plot, and how many of its ends were cut at the axis."""
    ci, y = _Interval.of(row.get("odds_ratio")), frame.y(i)
    clear = ci.excludes(1.0)
    colour = _CLEAR if clear else _UNCLEAR
    name, dataset = str(row["factor"]), str(row.get("dataset", ""))
    low_cut = not (_finite(ci.lower) and ci.lower >= frame.lo)
    high_cut = not (_finite(ci.upper) and ci.upper <= frame.hi)
    left = frame.x0 if low_cut else frame.x(ci.lower)
    right = frame.x1 if high_cut else frame.x(ci.upper)
    parts = [f"<title>{html.escape(name)} ({html.escape(dataset)}): odds ratio {html.escape(ci.ratio())}, "
             f"z {_signed(row.get('z'))}, privacy noise {_share(row.get('noise_share'))} of the variance</title>"]
    rank = html.escape(str(row.get("rank", i + 1)))
    parts += [f'<text x="6" y="{y + 4:.1f}" font-size="11" fill="#666">{rank}</text>',
              f'<text x="30" y="{y + 4:.1f}" font-size="12">{html.escape(name)}</text>',
              f'<text x="120" y="{y + 4:.1f}" font-size="11" fill="#666">{html.escape(_short(dataset))}</text>',
              f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{right:.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="2"/>']
    for cut, x, direction in ((low_cut, left, -1), (high_cut, right, 1)):
        parts.append(_arrow(x, y, direction, colour) if cut else f'<line x1="{x:.1f}" y1="{y - 4:.1f}" x2="{x:.1f}" '
                     f'y2="{y + 4:.1f}" stroke="{colour}" stroke-width="2"/>')
    cx = frame.x(ci.estimate) if _finite(ci.estimate) else frame.x1
    if clear:
        parts.append(f'<rect class="estimate excludes-1" x="{cx - 4.5:.1f}" y="{y - 4.5:.1f}" width="9" height="9" '
                     f'fill="{_CLEAR}"/>')
    else:
        parts.append(f'<circle class="estimate includes-1" cx="{cx:.1f}" cy="{y:.1f}" r="4.5" fill="#fff" '
                     f'stroke="{_UNCLEAR}" stroke-width="2"/>')
    parts.append(f'<text x="{frame.x1 + 14:.0f}" y="{y + 4:.1f}" font-size="11">{html.escape(ci.ratio())}</text>')
    return f'<g class="forest-row">{"".join(parts)}</g>', int(low_cut) + int(high_cut)


def _forest_background(frame: _Frame, ticks: list[float], n: int, bottom: float) -> str:
    """Under the rows: stripes on every other row, grid lines at the ticks, the dashed line at OR = 1."""
    parts = [f'<rect x="0" y="{frame.y(i) - frame.row / 2:.1f}" width="{frame.x1 + 250:.0f}" height="{frame.row:.0f}" '
             'fill="#f4f4f4"/>' for i in range(0, n, 2)]
    parts += [f'<line x1="{frame.x(t):.1f}" y1="{frame.top:.1f}" x2="{frame.x(t):.1f}" y2="{bottom:.1f}" '
              'stroke="#e2e2e2"/>' for t in ticks]
    one = frame.x(1.0)
    parts += [f'<line class="null-line" x1="{one:.1f}" y1="{frame.top - 8:.1f}" x2="{one:.1f}" y2="{bottom:.1f}" '
              'stroke="#222" stroke-width="1.5" stroke-dasharray="5 3"/>',
              f'<text x="{one:.1f}" y="{frame.top - 12:.1f}" font-size="11" text-anchor="middle">OR = 1 (no association)'
              "</text>"]
    return "".join(parts)


def _forest_axis(frame: _Frame, ticks: list[float], bottom: float) -> str:
    """Over the rows: the axis with its ticks and labels, and the column headings."""
    parts = [f'<line x1="{frame.x0}" y1="{bottom:.1f}" x2="{frame.x1}" y2="{bottom:.1f}" stroke="#444"/>']
    for t in ticks:
        x = frame.x(t)
        parts += [f'<line x1="{x:.1f}" y1="{bottom:.1f}" x2="{x:.1f}" y2="{bottom + 5:.1f}" stroke="#444"/>',
                  f'<text class="tick" x="{x:.1f}" y="{bottom + 18:.1f}" font-size="11" text-anchor="middle">{t:g}</text>']
    parts += [f'<text x="{(frame.x0 + frame.x1) / 2:.1f}" y="{bottom + 36:.1f}" font-size="12" text-anchor="middle">'
              "odds ratio, log scale (◄ lower odds of the outcome · higher odds ►)</text>",
              f'<text x="30" y="{frame.top - 12:.1f}" font-size="11" font-weight="bold">factor</text>',
              f'<text x="120" y="{frame.top - 12:.1f}" font-size="11" font-weight="bold">sector</text>',
              f'<text x="{frame.x1 + 14:.0f}" y="{frame.top - 12:.1f}" font-size="11" font-weight="bold">'
              "OR (95 % interval)</text>"]
    return "".join(parts)


def _legend() -> str:
    return (f'<rect x="30" y="6" width="9" height="9" fill="{_CLEAR}"/><text x="44" y="15" font-size="11">'
            "95 % interval excludes 1</text>"
            f'<circle cx="214" cy="10.5" r="4.5" fill="#fff" stroke="{_UNCLEAR}" stroke-width="2"/>'
            '<text x="224" y="15" font-size="11">interval includes 1</text>'
            f'<polygon points="360,6 368,10.5 360,15" fill="{_UNCLEAR}"/><text x="374" y="15" font-size="11">'
            "interval runs past the axis (full interval in the table)</text>")


def _forest(rows: list[dict[str, Any]]) -> str:
    lo, hi, ticks = _axis([_Interval.of(r.get("odds_ratio")) for r in rows])
    frame = _Frame(lo, hi)
    bottom = frame.top + frame.row * len(rows) + 4
    drawn = [_forest_row(i, row, frame) for i, row in enumerate(rows)]
    cut = sum(1 for _, ends in drawn if ends)
    beyond = sum(1 for r in rows if not lo <= _Interval.of(r.get("odds_ratio")).estimate <= hi)
    width, height = frame.x1 + 250, bottom + 48
    title = f"Forest plot: odds ratios with 95 % intervals of the {len(rows)} strongest factors"
    clear = sum(1 for r in rows if _Interval.of(r.get("odds_ratio")).excludes(1.0))
    caption = (f"Odds ratio of the outcome with and without each factor, for the {len(rows)} factors ranked strongest, "
               "with 95 % intervals that include both sampling variation and the privacy noise; log scale, dashed line "
               f"at OR = 1. Filled squares: the interval excludes 1 ({clear} of {len(rows)}); open circles: it includes "
               f"1. The axis runs from {lo:g} to {hi:g}; an arrowhead at its edge marks an interval end past it "
               f"({cut} of {len(rows)} intervals are cut this way)"
               + (f", and a marker on the edge an estimate past it ({beyond} of {len(rows)})" if beyond else "")
               + " — the table below gives every interval in full.")
    return (f'<figure class="plot forest"><svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
            f'height="{height:.0f}" role="img" aria-label="{html.escape(title)}"><title>{html.escape(title)}</title>'
            f'{_legend()}{_forest_background(frame, ticks, len(rows), bottom)}{"".join(svg for svg, _ in drawn)}'
            f'{_forest_axis(frame, ticks, bottom)}</svg>'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


# -- tables ------------------------------------------------------------------------------------------------------

def _factor_table(rows: list[dict[str, Any]]) -> str:
    head = ("<tr><th>rank</th><th>factor</th><th>dataset</th><th>prevalence</th><th>risk if exposed</th>"
            "<th>risk if not exposed</th><th>odds ratio (95 % interval)</th><th>z</th>"
            "<th>share of the variance from privacy noise</th></tr>")
    body = "".join(
        f"<tr class='factor-row'><td class='num'>{html.escape(str(r.get('rank', i + 1)))}</td>"
        f"<td>{html.escape(str(r['factor']))}</td><td>{html.escape(str(r.get('dataset', '')))}</td>"
        f"<td class='num'>{_percent(r.get('prevalence'))}</td><td class='num'>{_percent(r.get('risk_exposed'))}</td>"
        f"<td class='num'>{_percent(r.get('risk_unexposed'))}</td>"
        f"<td class='num'>{html.escape(_Interval.of(r.get('odds_ratio')).ratio())}</td>"
        f"<td class='num'>{_signed(r.get('z'))}</td><td class='num'>{_share(r.get('noise_share'))}</td></tr>"
        for i, r in enumerate(rows))
    return (f"<table class='factors'>{head}{body}</table><p class='note'>Prevalence: the released count of cohort "
            "members with the factor over the released cohort size. Risks: cases over members in each group; a "
            "group's count the noise pushed to or below zero is taken as 0.5 for the ratios. The last column is the "
            "part of the uncertainty of the log odds ratio that the privacy noise causes (the rest is sampling).</p>")


def _pair_factor(pair: dict[str, Any], i: int) -> str:
    names = pair.get("pair") or ["?", "?"]
    datasets = pair.get("datasets") or ["", ""]
    return (f"<td>{html.escape(str(names[i]))}<br><span class='sector'>{html.escape(_short(str(datasets[i])))}"
            "</span></td>")


def _pair_table(pairs: list[dict[str, Any]], rule: str, top: int) -> str:
    if not pairs:
        return "<p>No pairs of factors were released in this study.</p>"
    shown = pairs[:top]
    intro = (f"<p>{len(pairs)} pairs of factors were released; the {len(shown)} with the strongest interaction are "
             f"shown (all are in <code>pairs.csv</code>). How pairs were chosen: {html.escape(rule)}.</p>")
    head = ("<tr><th>rank</th><th>factor A</th><th>factor B</th><th>sectors</th><th>with both: members</th>"
            "<th>with both: cases</th><th>joint odds ratio, both vs neither (95 % interval)</th>"
            "<th>ratio of odds ratios (95 % interval)</th><th>RERI (95 % interval)</th><th>z</th></tr>")
    body = []
    for i, p in enumerate(shown):
        both = (p.get("strata") or {}).get("11", {})
        body.append(f"<tr class='pair-row'><td class='num'>{html.escape(str(p.get('rank', i + 1)))}</td>"
                    f"{_pair_factor(p, 0)}{_pair_factor(p, 1)}<td>{html.escape(str(p.get('kind', '')))}</td>"
                    f"<td class='num'>{_count(both.get('count'))}</td><td class='num'>{_count(both.get('cases'))}</td>"
                    f"<td class='num'>{_Interval.of(p.get('joint_odds_ratio')).cell()}</td>"
                    f"<td class='num'>{_Interval.of(p.get('ratio_of_odds_ratios')).cell()}</td>"
                    f"<td class='num'>{_Interval.of(p.get('reri')).cell(log_scale=False)}</td>"
                    f"<td class='num'>{_signed(p.get('z'))}</td></tr>")
    return (f"{intro}<table class='pairs'>{head}{''.join(body)}</table><p class='note'>The ratio of odds ratios is "
            "OR(both) / (OR(A only) · OR(B only)): above 1, the pair raises the odds more than the two factors "
            "would multiplied; RERI measures the same on the additive (risk) scale, 0 meaning no interaction. The "
            "members and cases with both are noisy counts and can come out negative when they are small.</p>")


def _factors_csv(rows: list[dict[str, Any]]) -> Table:
    header = ["rank", "factor", "dataset", "prevalence", "exposed", "exposed_cases", "odds_ratio", "or_lower95",
              "or_upper95", "risk_ratio", "rr_lower95", "rr_upper95", "z", "noise_share"]
    out = []
    for i, r in enumerate(rows):
        cells = r.get("cells") or {}
        odds, risk = _Interval.of(r.get("odds_ratio")), _Interval.of(r.get("risk_ratio"))
        exposed = float(cells.get("exposed_cases", math.nan)) + float(cells.get("exposed_noncases", math.nan))
        out.append([r.get("rank", i + 1), r["factor"], r.get("dataset", ""), r.get("prevalence"), exposed,
                    cells.get("exposed_cases"), odds.estimate, odds.lower, odds.upper, risk.estimate, risk.lower,
                    risk.upper, r.get("z"), r.get("noise_share")])
    return header, out


def _pairs_csv(pairs: list[dict[str, Any]]) -> Table:
    header = ["rank", "factor_a", "factor_b", "kind", "dataset_a", "dataset_b", "count_11", "cases_11", "joint_or",
              "joint_or_lower95", "joint_or_upper95", "ror", "ror_lower95", "ror_upper95", "reri", "reri_lower95",
              "reri_upper95", "z", "noise_share"]
    out = []
    for i, p in enumerate(pairs):
        names, datasets = p.get("pair") or ["", ""], p.get("datasets") or ["", ""]
        both = (p.get("strata") or {}).get("11", {})
        joint, ror, reri = (_Interval.of(p.get(k)) for k in ("joint_odds_ratio", "ratio_of_odds_ratios", "reri"))
        out.append([p.get("rank", i + 1), names[0], names[1], p.get("kind", ""), datasets[0], datasets[1],
                    both.get("count"), both.get("cases"), joint.estimate, joint.lower, joint.upper, ror.estimate,
                    ror.lower, ror.upper, reri.estimate, reri.lower, reri.upper, p.get("z"), p.get("noise_share")])
    return header, out


def cross_sector_section(outputs: dict[str, Any], privacy: dict[str, Any],
                         top: int = TOP) -> tuple[str, dict[str, Table]]:
    """The HTML section of a cross-sector count result and its CSV tables (``factors.csv``, ``pairs.csv``)."""
    factors = _ranked_factors(outputs)
    pairs: list[dict[str, Any]] = list(outputs.get("pairs", []))
    shown = factors[:top]
    parts = ["<h2>Risk factors across sectors</h2>", _plain_box(outputs, privacy, factors)]
    if shown:
        parts += [f"<h3>The {len(shown)} strongest of {len(factors)} factors</h3>", _forest(shown), _factor_table(shown),
                  "<p class='note'>Every factor is in <code>factors.csv</code>.</p>"]
    else:
        parts.append("<p>No factor was released in this study.</p>")
    parts += ["<h3>Combinations of two factors</h3>", _pair_table(pairs, str(outputs.get("pair_rule", "")), top)]
    tables = {"factors.csv": _factors_csv(factors), "pairs.csv": _pairs_csv(pairs)}
    adjusted = outputs.get("adjusted_model")
    if adjusted:
        holder = {str(r["factor"]): str(r.get("dataset", "")) for r in factors}
        parts.append(_adjusted_table(adjusted, holder))
        tables["adjusted.csv"] = _adjusted_csv(adjusted, holder)
    utility = outputs.get("privacy_utility")
    if utility:
        parts.append(_utility_table(utility, privacy))
    return "".join(parts), tables


def _kept(found: dict[str, Any] | None) -> str:
    if not found:
        return "—"
    return f"{float(found['mean']):.1f} [{int(found['min'])}–{int(found['max'])}]"


def _auc_spread(row: dict[str, Any], draws: int) -> str:
    """The AUC over the draws whose counts determine the model, and how many those were when not all."""
    found = row.get("adjusted_auc")
    if not found:
        return "—"
    some = int(row.get("adjusted_auc_draws", draws))
    of = f" ({some} of {draws} draws)" if some < draws else ""
    return f"{float(found['mean']):.3f} [{float(found['min']):.3f}–{float(found['max']):.3f}]{of}"


def _utility_table(utility: dict[str, Any], privacy: dict[str, Any]) -> str:
    """How the rankings would hold at other ε per dataset: the trade-off an officer weighs for the next study."""
    if "unavailable" in utility:
        return f"<h3>Privacy against utility</h3><p>{html.escape(str(utility['unavailable']))}</p>"
    this = privacy.get("epsilon")
    draws = int(utility.get("draws", 0))
    body = "".join(
        f"<tr><td class='num'>{float(r['epsilon']):g}{' (this study)' if this is not None and math.isclose(float(r['epsilon']), float(this), rel_tol=1e-3) else ''}</td>"
        f"<td class='num'>{_sd(float(r['noise_sd_exposed_cases']))}</td><td class='num'>{_kept(r['factors_kept'])}</td>"
        f"<td class='num'>{_kept(r.get('adjusted_kept'))}</td><td class='num'>{_auc_spread(r, draws)}</td></tr>"
        for r in utility.get("rows", []))
    exact = utility.get("adjusted_auc_without_noise")
    anchor = (f" Without further noise, this study's counts give the adjusted model an AUC of {float(exact):.3f}."
              if _finite(exact) else "")
    return ("<h3>Privacy against utility</h3><p>How much of its top ranks a study at each ε per dataset would keep, "
            f"and the AUC its adjusted model would report, out of {draws} simulated releases (mean [least–most]): "
            f"{html.escape(str(utility.get('method', '')))}{anchor}</p><table class='factors'><tr><th>ε per dataset</th>"
            "<th>noise sd of an exposed-case count</th><th>top-10 factors one at a time, kept</th>"
            f"<th>top {int(utility.get('adjusted_top', 5))} of the adjusted model, kept</th>"
            f"<th>AUC of the adjusted model</th></tr>{body}</table>")


def _adjusted_table(adjusted: dict[str, Any], holder: dict[str, str]) -> str:
    """The screened factors adjusted for each other: the multivariable view beside the one-at-a-time one."""
    if "unavailable" in adjusted:
        return (f"<h3>The screened factors adjusted for each other</h3><p>Not available: "
                f"{html.escape(str(adjusted['unavailable']))}.</p>")
    head = ("<tr><th>rank</th><th>factor</th><th>dataset</th><th>adjusted odds ratio (95 % interval)</th>"
            "<th>adjusted risk difference, percentage points (95 % interval)</th><th>z</th>"
            "<th>share of the variance from privacy noise</th></tr>")
    body = []
    for row in adjusted.get("factors", []):
        difference = row["risk_difference"]
        points = _Interval(100 * float(difference["estimate"]), 100 * float(difference["lower"]),
                           100 * float(difference["upper"]))
        body.append(f"<tr><td class='num'>{row['rank']}</td><td>{html.escape(str(row['factor']))}</td>"
                    f"<td>{html.escape(holder.get(str(row['factor']), ''))}</td>"
                    f"<td class='num'>{html.escape(_Interval.of(row['odds_ratio']).ratio())}</td>"
                    f"<td class='num'>{html.escape(' '.join(points.parts(log_scale=False)))}</td>"
                    f"<td class='num'>{_signed(row.get('z'))}</td><td class='num'>{_share(row.get('noise_share'))}</td></tr>")
    return (f"<h3>The screened factors adjusted for each other</h3><p>{html.escape(str(adjusted.get('screen', '')))}"
            f"; fitted from the released counts alone ({html.escape(str(adjusted.get('method', '')))}). A factor that "
            "only travels with stronger ones loses its association here; one that acts on its own keeps it.</p>"
            f"<table class='factors'>{head}{''.join(body)}</table>"
            "<p class='note'>The odds ratios come from one Newton step of the logistic likelihood from the model with "
            "no factors; on the synthetic town they rank the factors as the exact fit does but overstate their size "
            "(see the README). The risk differences are the exact least-squares fit of the same counts.</p>"
            + _evaluation(adjusted.get("evaluation")))


def _evaluation(found: dict[str, Any] | None) -> str:
    """How well the adjusted model separates and predicts, worked out from the released counts alone."""
    if not found:
        return ""
    if "unavailable" in found:
        return f"<h4>How well the model predicts</h4><p>Not available: {html.escape(str(found['unavailable']))}.</p>"
    auc, calibration = found["auc"], found["calibration_in_the_large"]
    scaled = found["scaled_brier"]
    ratio = calibration.get("ratio")
    return ("<h4>How well the model predicts</h4><table class='factors'><tr><th>measure</th><th>value</th>"
            "<th>what it says</th></tr>"
            f"<tr><td>AUC (95 % interval)</td><td class='num'>{float(auc['estimate']):.3f} "
            f"({float(auc['lower']):.3f}–{float(auc['upper']):.3f})</td><td>the chance that a child who became a "
            "client scores higher than one who did not (0.5: no better than chance); privacy noise is "
            f"{_share(auc.get('noise_share'))} of its variance</td></tr>"
            "<tr><td>share of the outcome's variance explained (scaled Brier score)</td><td class='num'>"
            + (f"{100 * float(scaled['estimate']):.1f} % {_sd(100 * float(scaled['noise_sd']))}" if scaled else "—")
            + "</td><td>" + ("the linear model's squared error against that of the outcome rate alone" if scaled else
                             html.escape(str(found.get("brier_unavailable", "")))) + "</td></tr>"
            f"<tr><td>mean predicted risk from the logistic odds ratios</td><td class='num'>"
            f"{_percent(float(calibration['mean_predicted_risk']))} against "
            f"{_percent(float(calibration['observed_rate']))} observed</td><td>"
            + (f"the logistic step predicts {float(ratio):.2f} times the cases there are: read its odds ratios as a "
               "ranking, not as sizes" if _finite(ratio) and float(ratio) > 1.1 else
               "calibrated in the large" if _finite(ratio) and float(ratio) > 0.9 else
               "the logistic step predicts fewer cases than there are") + "</td></tr></table>"
            f"<p class='note'>How: {html.escape(str(found.get('method', '')))}. No per-resident score was formed anywhere: "
            "these follow from the counts each node released with noise. Measured on the children the model was "
            "fitted on.</p>")


def _adjusted_csv(adjusted: dict[str, Any], holder: dict[str, str]) -> Table:
    header = ["rank", "factor", "dataset", "adjusted_or", "or_lower95", "or_upper95", "risk_difference",
              "rd_lower95", "rd_upper95", "z", "noise_share"]
    rows = [[r["rank"], r["factor"], holder.get(str(r["factor"]), ""), r["odds_ratio"]["estimate"],
             r["odds_ratio"]["lower"], r["odds_ratio"]["upper"], r["risk_difference"]["estimate"],
             r["risk_difference"]["lower"], r["risk_difference"]["upper"], r["z"], r["noise_share"]]
            for r in adjusted.get("factors", [])]
    return header, rows
