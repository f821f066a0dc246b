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
from coordinator.charts import PALETTE, band_panel, budget_bar, coefficient_plot, epsilon_text, heatmap
from coordinator.public_register import register_entry, register_sentences_html
from coordinator.reports_cross_sector import cross_sector_section
from coordinator.runner import results
from coordinator.studies import get_study
from federation.privacy import epsilon

__all__ = ["render_report", "report_body", "report_css", "study_report", "write_report"]

_STYLESHEET = Path(__file__).resolve().parent / "web" / "static" / "report.css"


def report_css() -> str:
    """The reports' styles: inlined into each offline report, served to the web pages as /static/report.css."""
    return _STYLESHEET.read_text(encoding="utf-8")


def _dataset_epsilon(privacy: dict[str, Any], rho: float) -> float:
    """A dataset's ε in this study: the study's, unless it was charged another ρ (a cross-sector study charges
    each dataset for the counts its residents can change), then OpenDP's conversion as the public register's."""
    study_eps = float(privacy.get("epsilon", 0.0))
    if rho == privacy.get("rho") or privacy.get("delta") is None:
        return study_eps
    return epsilon(float(rho), float(privacy["delta"]))


def _amount(balance: dict[str, Any], key: str) -> tuple[float, float]:
    """(ρ, ε) of a balance's cap or spent amount; ρ falls back to ε where a caller gave only ε."""
    found = balance.get(key) or {}
    eps = float(found.get("epsilon", 0.0))
    return float(found.get("rho", eps)), eps


def _budget(privacy: dict[str, Any], balances: list[dict[str, Any]]) -> str:
    """Per dataset: this study's ε, and a bar of the dataset's budget — spent by other studies, this study, left."""
    by_name = {b["name"]: b for b in balances}
    rows, bars = [], []
    for dataset, spent in privacy.get("per_dataset", {}).items():
        study_eps, study_rho = _dataset_epsilon(privacy, spent["rho"]), float(spent["rho"])
        balance = by_name.get(dataset)
        if balance is not None:
            cap_rho, cap_eps = _amount(balance, "cap")
            total_rho, total_eps = _amount(balance, "spent")
            uses_rho = "rho" in (balance.get("cap") or {})
            this = study_rho if uses_rho else study_eps
            before = max(total_rho - this, 0.0)
            words = (f"{dataset}: this study ε {epsilon_text(study_eps)}; ε {epsilon_text(total_eps)} spent of "
                     f"{epsilon_text(cap_eps)} for the period.")
            bars.append(budget_bar(dataset, before, this, cap_rho, words))
            used = f"{epsilon_text(total_eps)} of {epsilon_text(cap_eps)}"
        else:
            used = "no budget on record"
        rows.append([dataset, f"ε {epsilon_text(study_eps)} (ρ {study_rho:.3g})", used])
    table = ("<table><thead><tr><th scope='col'>dataset</th><th scope='col'>this study</th>"
             "<th scope='col'>ε spent of the period's budget (all studies)</th></tr></thead><tbody>"
             + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
             + "</tbody></table>")
    legend = ("<p class='note'>Bars: dark grey, spent by other studies; orange, this study; white, what is left of "
              "the dataset's budget for the period. Lengths are shares of the budget in ρ (zero-concentrated "
              "differential privacy), which adds up across studies; ε does not add up, so it is given in words.</p>")
    return table + (legend + "<div class='grid'>" + "".join(bars) + "</div>" if bars else "")


def _fact(value: Any, nested: bool = False) -> str:
    """A mechanism value for people: a dict as one line per key (nested dicts indented), numbers rounded inside."""
    if isinstance(value, dict):
        lines = "".join(f"<li>{html.escape(str(k))}: {_fact(v, True)}</li>" for k, v in value.items())
        return f"<ul class='facts'>{lines}</ul>"
    if isinstance(value, list):
        return ", ".join(_fact(v, True) for v in value)
    if isinstance(value, float):
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
    body, tables = report_body(result, balances, register)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:sans-serif;margin:2em;color:#111}}{report_css()}</style></head>
<body><main class="report"><h1>{html.escape(title)}</h1>
{body}
</main></body></html>"""
    return page, tables


def report_body(result: dict[str, Any], balances: list[dict[str, Any]] | None = None,
                register: dict[str, Any] | None = None) -> tuple[str, dict[str, Table]]:
    """The report's sections (under ``h2`` headings) and its CSV tables: what the offline report and the web page
    of a released study both show."""
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
        maps = "".join(heatmap(f"Moves between health segments, service status {group}", m, states)
                       for group, m in outputs["transition_matrices"].items())
        estimator = outputs.get("estimator")
        how = f"<p class='note'>Estimated by {html.escape(estimator)}.</p>" if estimator else ""
        sections.append("<h2>Transition probabilities between segments</h2><p>Each map gives, for residents in a "
                        "segment one year (row), the probability of being in each segment the next year (column); "
                        f"rows add up to 1.</p><div class='grid'>{maps}</div>{how}")
        projection = outputs.get("projection")
        if projection:
            demand = projection["service_demand"]
            series = {s: ([r[n] for r in demand["estimate"]], [r[n] for r in demand["lower"]],
                          [r[n] for r in demand["upper"]]) for n, s in enumerate(demand["services"])}
            tables["projection.csv"] = (["year", "service", "estimate", "lower95", "upper95"],
                                        [[y, s, *[v[i] for v in series[s]]] for i, y in enumerate(projection["years"])
                                         for s in series])
            ahead = "years after the last observed year" if projection["years"][0] == 0 else "year"
            panels = "".join(band_panel(f"Projected demand: {service}", projection["years"], *values,
                                        unit=str(demand["unit"]), colour=PALETTE[n % len(PALETTE)], x_title=ahead)
                             for n, (service, values) in enumerate(series.items()))
            sections.append("<h2>Projected service demand</h2><p>One chart per service, each with its own scale; "
                            "the shaded band is the 95 % interval from the privacy noise and sampling.</p>"
                            f"<div class='grid'>{panels}</div><p class='note'>{html.escape(projection['model'])}; "
                            f"start: {html.escape(projection['start'])}.</p>")
    if "coefficients" in outputs:
        intervals = outputs.get("coefficient_intervals", {})
        rows_c, table = [], []
        for cls, coefs in outputs["coefficients"].items():
            for feature, value in coefs.items():
                lo, hi = intervals.get(cls, {}).get(feature, (value, value))
                rows_c.append((f"{cls}: {feature}" if len(outputs["coefficients"]) > 1 else feature, value, lo, hi))
                table.append([cls, feature, value, lo, hi])
        tables["coefficients.csv"] = (["class", "feature", "coefficient", "lower95", "upper95"], table)
        sections.append("<h2>Model coefficients</h2>" + coefficient_plot(
            "Coefficients with 95 % intervals", rows_c, "log-odds per unit of the scaled feature"))
        scaling = outputs.get("scaling_bounds") or {}
        if scaling:   # what "per unit of the scaled feature" means, per numeric feature
            rows_s = "".join(f"<tr><td>{html.escape(name)}</td><td class='num'>{b['low']:g}</td>"
                             f"<td class='num'>{b['high']:g}</td><td>{html.escape(str(b['from']))}</td></tr>"
                             for name, b in scaling.items())
            sections.append("<p>Numeric features are scaled to [0, 1] between these bounds from the contract "
                            "(values outside count as the nearer bound); a coefficient is the change in log-odds "
                            "from the low to the high bound. A bound far beyond most values flattens a feature "
                            "and its effect drowns in the noise: give the contract a plausible range "
                            "(<code>warn_range</code>).</p><table><thead><tr><th scope='col'>feature</th>"
                            "<th scope='col'>0 at</th><th scope='col'>1 at</th><th scope='col'>from the "
                            f"contract's</th></tr></thead><tbody>{rows_s}</tbody></table>")
    if outputs.get("kind") == "cross_sector_counts":
        section, found_tables = cross_sector_section(outputs, privacy)
        sections.append(section)
        tables.update(found_tables)
    evaluation = outputs.get("evaluation")
    if evaluation:
        sections.append(_evaluation_section(evaluation))
    sections.append("<h2>Privacy spent</h2>" + _budget(privacy, balances or []))
    mechanism = {k: v for k, v in privacy.items() if k not in ("per_dataset",)}
    facts = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{epsilon_text(v) if k == 'epsilon' else _fact(v)}</td></tr>"
                    for k, v in mechanism.items())
    entry = ""
    if register:
        entry = "<h2>Public register entry</h2>" + register_sentences_html(register)
    intro = (f"<p>Study <code>{html.escape(str(result.get('study_id')))}</code>, status "
             f"{html.escape(str(result.get('status')))}, {len(result.get('datasets', []))} dataset(s), privacy "
             f"ε {epsilon_text(privacy.get('epsilon'))} per resident (δ {privacy.get('delta', 0):g}). Every number "
             "here comes from differentially private releases: no record about any resident left the sector that "
             "holds it.</p>")
    body = intro + "".join(sections) + f"<h2>Mechanism</h2><table>{facts}</table>{entry}"
    return body, tables


def _evaluation_section(evaluation: dict[str, Any]) -> str:
    """The private evaluation of a horizontal model: its AUC with interval, or why there is none, and the
    calibration groups whose rows outweigh the noise."""
    auc = evaluation.get("auc")
    if auc is None:   # a noisy class total at or below zero: the noise outweighs the rows of one outcome
        positives, negatives = evaluation.get("noisy_positive_rows"), evaluation.get("noisy_negative_rows")
        totals = (f" (noisy rows with the outcome {positives:,.0f}, without it {negatives:,.0f})"
                  if positives is not None and negatives is not None else "")
        heading = ("<h2>Private evaluation</h2><p>AUC not available: after the privacy noise, the rows with the "
                   f"outcome or the rows without it came to zero or less{totals}. The noise outweighs them; more "
                   "residents or a larger privacy budget would give an AUC.</p>")
    elif not evaluation.get("auc_informative", True):
        low, high = evaluation.get("auc_interval") or (auc, auc)
        why = (f"the estimate, {auc:.2f}, fell outside the possible range 0–1" if not 0 <= auc <= 1 else
               f"its 95 % noise interval, {low:.2f} to {high:.2f}, spans both chance (0.5) and a perfect model (1)")
        heading = ("<h2>Private evaluation</h2><p>AUC not informative: the privacy noise on the score histograms "
                   f"outweighs the rows ({why}). More residents or a larger privacy budget would give a usable "
                   "AUC.</p>")
    else:
        interval = evaluation.get("auc_interval")
        # an AUC lies in [0, 1]: its interval is shown cut to that range
        shown = [min(max(v, 0.0), 1.0) for v in interval] if interval else None
        auc_text = f"AUC {auc:.3f}" + (" (95 % interval {:.3f} – {:.3f})".format(*shown) if shown else "")
        heading = (f"<h2>Private evaluation</h2><p>{auc_text}, from noisy score histograms "
                   f"({html.escape(str(evaluation.get('note', '')))}).</p>")
    groups = evaluation.get("calibration", [])
    if not groups:
        return heading + "<p>Calibration: no group of score bins has rows that outweigh the noise.</p>"
    rows = "".join(
        f"<tr><td class='num'>{_rate(c['predicted'])}</td><td class='num'>{_rate(c['observed'])}</td>"
        + ("<td class='num'>{} – {}</td>".format(*map(_rate, c["calibration_interval"]))
           if "calibration_interval" in c else "<td></td>")
        + ("<td class='num'>±{:.3f}</td>".format(c["training_noise_se"]) if "training_noise_se" in c
           else "<td></td>")
        + f"<td class='num'>{c['noisy_rows']:,.0f}</td></tr>" for c in groups)
    beyond = any(not 0 <= v <= 1 for c in groups
                 for v in (c["predicted"], c["observed"], *c.get("calibration_interval", ())))
    note = ("<p class='note'>* The noisy counts put this rate or interval end outside 0–1, where no rate can be; it "
            "is shown at the nearer bound (the noise, not the model, put it there).</p>" if beyond else "")
    return (heading + "<p>Calibration, bins well above the noise:</p><table><thead><tr><th scope='col'>predicted"
            "</th><th scope='col'>observed</th><th scope='col'>interval (a calibrated model's prediction lies in it)"
            "</th><th scope='col'>of which training noise (sd of the prediction)</th><th scope='col'>noisy rows</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>{note}")


def _rate(value: float) -> str:
    """A rate for the page: three decimals, at the nearer bound with a * where the noise put it past 0–1."""
    return f"{value:.3f}" if 0 <= value <= 1 else f"{min(max(value, 0.0), 1.0):.3f}*"
