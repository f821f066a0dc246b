"""A study's result as files people can open: CSV tables and one self-contained HTML report.

The report has no scripts and no external assets (inline SVG and CSS only), so it opens offline
and can be archived with the study. It shows what the result JSON holds — transition heatmaps,
the projection with its uncertainty bands, coefficients with intervals, a cross-sector study's risk
factors and pairs (``coordinator.reports_cross_sector``) — and the privacy spent.
"""

from __future__ import annotations

import csv
import html
import json
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from coordinator.ledger import balances as all_balances
from coordinator.public_register import register_entry
from coordinator.reports_cross_sector import CSS as CROSS_SECTOR_CSS
from coordinator.reports_cross_sector import cross_sector_section
from coordinator.runner import results
from coordinator.studies import get_study
from federation.privacy import epsilon

__all__ = ["render_report", "study_report", "write_report"]

_PALETTE = ["#1b6ca8", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d5a97"]


def _heatmap(title: str, matrix: list[list[float]], labels: list[Any], size: int = 260) -> str:
    k = len(matrix)
    cell = size / max(k, 1)
    rects = []
    for i, row in enumerate(matrix):
        for j, p in enumerate(row):
            shade = int(255 - 215 * min(max(p, 0.0), 1.0))
            rects.append(f'<rect x="{30 + j * cell:.1f}" y="{20 + i * cell:.1f}" width="{cell:.1f}" height="{cell:.1f}" '
                         f'fill="rgb({shade},{shade},255)"><title>{labels[i]} → {labels[j]}: {p:.3f}</title></rect>')
    return (f'<figure class="plot heatmap"><svg xmlns="http://www.w3.org/2000/svg" width="{size + 40}" '
            f'height="{size + 40}" role="img" aria-label="{html.escape(title)}">'
            f'<text x="30" y="14" font-size="12">from ↓ to →</text>{"".join(rects)}</svg>'
            f"<figcaption>{html.escape(title)}</figcaption></figure>")


def _bands(title: str, years: list[Any], series: dict[str, tuple[list[float], list[float], list[float]]],
           unit: str, width: int = 560, height: int = 260) -> str:
    top = max((max(u) for _, _, u in series.values()), default=1.0) or 1.0
    def x(i: int) -> float:
        return 50 + i * (width - 70) / max(len(years) - 1, 1)

    def y(v: float) -> float:
        return height - 30 - (height - 50) * v / top

    parts = [f'<line x1="50" y1="{height - 30}" x2="{width - 20}" y2="{height - 30}" stroke="#444"/>',
             f'<text x="50" y="14" font-size="12">{html.escape(unit)} (max {top:,.0f})</text>']
    for i, year in enumerate(years):
        parts.append(f'<text x="{x(i):.1f}" y="{height - 12}" font-size="10" text-anchor="middle">{year}</text>')
    for n, (name, (estimate, lower, upper)) in enumerate(series.items()):
        colour = _PALETTE[n % len(_PALETTE)]
        band = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(upper)) + " " + " ".join(
            f"{x(i):.1f},{y(v):.1f}" for i, v in reversed(list(enumerate(lower))))
        line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(estimate))
        parts.append(f'<polygon class="band" points="{band}" fill="{colour}" fill-opacity="0.2"/>')
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{width - 18}" y="{y(estimate[-1]):.1f}" font-size="11" fill="{colour}">'
                     f"{html.escape(name)}</text>")
    return (f'<figure class="plot projection"><svg xmlns="http://www.w3.org/2000/svg" width="{width + 80}" '
            f'height="{height}" role="img" aria-label="{html.escape(title)}">{"".join(parts)}</svg>'
            f"<figcaption>{html.escape(title)}</figcaption></figure>")


def _coefficients(title: str, rows: list[tuple[str, float, float, float]], width: int = 560) -> str:
    span = max((max(abs(lo), abs(hi), abs(v)) for _, v, lo, hi in rows), default=1.0) or 1.0
    height = 30 + 22 * len(rows)
    mid = 200 + (width - 220) / 2
    def x(v: float) -> float:
        return mid + (width - 220) / 2 * v / span

    parts = [f'<line x1="{mid}" y1="10" x2="{mid}" y2="{height - 10}" stroke="#999"/>']
    for i, (name, value, lo, hi) in enumerate(rows):
        yy = 25 + 22 * i
        parts.append(f'<text x="190" y="{yy + 4}" font-size="11" text-anchor="end">{html.escape(name)}</text>')
        parts.append(f'<line x1="{x(lo):.1f}" y1="{yy}" x2="{x(hi):.1f}" y2="{yy}" stroke="#1b6ca8" stroke-width="2"/>')
        parts.append(f'<circle class="coefficient" cx="{x(value):.1f}" cy="{yy}" r="4" fill="#d1495b"/>')
    return (f'<figure class="plot coefficients"><svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" role="img" aria-label="{html.escape(title)}">{"".join(parts)}</svg>'
            f"<figcaption>{html.escape(title)}</figcaption></figure>")


def _dataset_epsilon(privacy: dict[str, Any], rho: float) -> float:
    """A dataset's ε in this study: the study's, unless it was charged another ρ (a cross-sector study charges
    each dataset for the counts its residents can change), then OpenDP's conversion as the public register's."""
    study_eps = float(privacy.get("epsilon", 0.0))
    if rho == privacy.get("rho") or privacy.get("delta") is None:
        return study_eps
    return epsilon(float(rho), float(privacy["delta"]))


def _budget(privacy: dict[str, Any], balances: list[dict[str, Any]]) -> str:
    by_name = {b["name"]: b for b in balances}
    rows = []
    top = max([b["cap"]["epsilon"] for b in balances] + [1.0])
    for dataset, spent in privacy.get("per_dataset", {}).items():
        study_eps = _dataset_epsilon(privacy, spent["rho"])
        balance = by_name.get(dataset)
        total = balance["spent"]["epsilon"] if balance else study_eps
        cap = balance["cap"]["epsilon"] if balance else None
        bar = 300 * min(total / top, 1.0)
        cap_mark = f'<line x1="{300 * cap / top:.1f}" y1="0" x2="{300 * cap / top:.1f}" y2="18" stroke="#000"/>' if cap else ""
        rows.append(f"<tr><td>{html.escape(dataset)}</td><td>ε {study_eps:.3g} (ρ {spent['rho']:.4g})</td>"
                    f'<td><svg class="plot budget" width="310" height="18"><rect width="{bar:.1f}" height="18" '
                    f'fill="#edae49"/>{cap_mark}</svg></td><td>{f"{total:.3g} of {cap:.3g}" if cap else ""}</td></tr>')
    return ("<table><tr><th>dataset</th><th>this study</th><th>budget used (bar) and cap (line)</th>"
            f"<th>ε spent of cap</th></tr>{''.join(rows)}</table>")


def _fact(value: Any, nested: bool = False) -> str:
    """A mechanism value for people: a dict as one line per key (nested dicts indented), numbers rounded inside."""
    if isinstance(value, dict):
        lines = "".join(f"<li>{html.escape(str(k))}: {_fact(v, True)}</li>" for k, v in value.items())
        return f"<ul class='facts'>{lines}</ul>"
    if isinstance(value, list):
        return ", ".join(_fact(v, True) for v in value)
    if nested and isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


#: a CSV table of a report: header and rows
Table = tuple[list[str], list[list[Any]]]


def write_report(result: dict[str, Any], out_dir: Path, title: str,
                 balances: list[dict[str, Any]] | None = None, register: dict[str, Any] | None = None) -> Path:
    """Write ``result.json``, CSV tables and ``report.html`` under ``out_dir``; returns the report's path."""
    page, tables = render_report(result, title, balances, register)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "result.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    for name, (header, rows) in tables.items():
        with (out_dir / name).open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows(rows)
    path = out_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def study_report(session: Session, study_id: str) -> str:
    """The report page of a released study, from what the coordinator stores (result, budgets, register)."""
    result = results(session, study_id)
    study = get_study(session, study_id)
    found = [b.to_json() for b in all_balances(session, period=study.period) if b.name in result.get("datasets", [])]
    page, _ = render_report(result, study.name, found, register_entry(session, study))
    return page


def render_report(result: dict[str, Any], title: str, balances: list[dict[str, Any]] | None = None,
                  register: dict[str, Any] | None = None) -> tuple[str, dict[str, Table]]:
    """The self-contained HTML page and the CSV tables (by file name) of a study's result."""
    outputs, privacy = result.get("outputs", {}), result.get("privacy", {})
    sections: list[str] = []
    tables: dict[str, Table] = {}
    if "transition_matrices" in outputs:
        states = outputs.get("states") or list(range(1, len(next(iter(outputs["transition_matrices"].values()))) + 1))
        rows = []
        for group, found in outputs.get("transition_intervals", {}).items():
            for i, a in enumerate(states):
                for j, b in enumerate(states):
                    rows.append([group, a, b, found["probabilities"][i][j], found["lower"][i][j], found["upper"][i][j]])
        tables["transitions.csv"] = (["service", "from", "to", "probability", "lower95", "upper95"], rows)
        maps = "".join(_heatmap(f"service status: {group}", m, states)
                       for group, m in outputs["transition_matrices"].items())
        estimator = outputs.get("estimator")
        how = f"<p class='note'>Estimated by {html.escape(estimator)}.</p>" if estimator else ""
        sections.append(f"<h2>Transition probabilities between segments</h2><div class='grid'>{maps}</div>{how}")
        projection = outputs.get("projection")
        if projection:
            demand = projection["service_demand"]
            series = {s: ([r[n] for r in demand["estimate"]], [r[n] for r in demand["lower"]],
                          [r[n] for r in demand["upper"]]) for n, s in enumerate(demand["services"])}
            tables["projection.csv"] = (["year", "service", "estimate", "lower95", "upper95"],
                                        [[y, s, *[v[i] for v in series[s]]] for i, y in enumerate(projection["years"])
                                         for s in series])
            sections.append("<h2>Projected service demand</h2>" + _bands(
                "service demand with 95 % bands (DP noise and sampling)", projection["years"], series, demand["unit"])
                + f"<p class='note'>{html.escape(projection['model'])}; start: {html.escape(projection['start'])}.</p>")
    if "coefficients" in outputs:
        intervals = outputs.get("coefficient_intervals", {})
        rows_c, table = [], []
        for cls, coefs in outputs["coefficients"].items():
            for feature, value in coefs.items():
                lo, hi = intervals.get(cls, {}).get(feature, (value, value))
                rows_c.append((f"{cls}: {feature}" if len(outputs["coefficients"]) > 1 else feature, value, lo, hi))
                table.append([cls, feature, value, lo, hi])
        tables["coefficients.csv"] = (["class", "feature", "coefficient", "lower95", "upper95"], table)
        sections.append("<h2>Model coefficients (log-odds per unit of scaled feature)</h2>"
                        + _coefficients("coefficients with 95 % intervals", rows_c))
    if outputs.get("kind") == "cross_sector_counts":
        section, found_tables = cross_sector_section(outputs, privacy)
        sections.append(section)
        tables.update(found_tables)
    evaluation = outputs.get("evaluation")
    if evaluation:
        auc = evaluation.get("auc")
        calibration = "".join(f"<tr><td>{c['predicted']:.3f}</td><td>{c['observed']:.3f}</td>"
                              f"<td>{c['noisy_rows']:,.0f}</td></tr>" for c in evaluation.get("calibration", []))
        sections.append(f"<h2>Private evaluation</h2><p>AUC {auc:.3f}, from noisy score histograms "
                        f"({html.escape(evaluation['note'])}). Calibration, bins well above the noise:</p>" if auc is not None else "<h2>Private evaluation</h2>")
        sections.append("<table><tr><th>predicted</th><th>observed</th><th>noisy rows</th></tr>"
                        f"{calibration}</table>")
    sections.append("<h2>Privacy spent</h2>" + _budget(privacy, balances or []))
    mechanism = {k: v for k, v in privacy.items() if k not in ("per_dataset",)}
    facts = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_fact(v)}</td></tr>" for k, v in mechanism.items())
    entry = ""
    if register:
        entry = ("<h2>Public register entry</h2><table>" + "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(json.dumps(v) if not isinstance(v, str) else v)}</td></tr>"
            for k, v in register.items()) + "</table>")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}.grid{{display:flex;flex-wrap:wrap;gap:1em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}}
figure{{margin:0}}figcaption{{font-size:.9em;color:#444}}.note{{color:#555;font-size:.9em}}
ul.facts{{margin:0;padding-left:1.2em}}{CROSS_SECTOR_CSS}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>Study <code>{html.escape(str(result.get("study_id")))}</code>, status {html.escape(str(result.get("status")))},
{len(result.get("datasets", []))} dataset(s). Every number here comes from differentially private releases:
no record about any resident left the sector that holds it.</p>
{''.join(sections)}
<h2>Mechanism</h2><table>{facts}</table>
{entry}
</body></html>"""
    return page, tables
