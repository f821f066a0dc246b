"""Charts a person can read (``coordinator.charts``) and the reports drawn with them: axes with ticks and units,
segment numbers and a colour legend on heatmaps, visible bands, a text alternative and a data table for every
chart, numbers rounded for people, the register entry in sentences."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from coordinator.charts import (band_panel, budget_bar, coefficient_plot, epsilon_text, heatmap, nice_ticks,
                                step_line)
from coordinator.reports import render_report

SVG = "{http://www.w3.org/2000/svg}"


def _svg(figure: str) -> ET.Element:
    found = re.search(r"<svg .*?</svg>", figure, re.S)
    assert found is not None
    return ET.fromstring(found.group(0))


def _alternative(svg: ET.Element) -> tuple[str, str]:
    title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
    assert svg.get("role") == "img" and title is not None and desc is not None
    return title.text or "", desc.text or ""


def _ticks(svg: ET.Element) -> list[str]:
    return [t.text or "" for t in svg.iter(f"{SVG}text") if t.get("class") == "tick"]


@pytest.mark.parametrize(("value", "shown"), [(0.9999994864512444, "1.00"), (0.5, "0.50"), (12.34, "12.3"),
                                              (0.0012, "0.0012"), (0, "0")])
def test_epsilon_is_rounded_for_people(value: float, shown: str) -> None:
    assert epsilon_text(value) == shown


def test_ticks_are_round_numbers_that_enclose_the_range() -> None:
    assert nice_ticks(0, 3.2) == [0, 1, 2, 3, 4]
    assert nice_ticks(7723, 9135) == [7500, 8000, 8500, 9000, 9500]
    ticks = nice_ticks(-0.37, 1.2, 6)
    assert ticks[0] <= -0.37 and ticks[-1] >= 1.2 and len(set(round(b - a, 9) for a, b in zip(ticks, ticks[1:]))) == 1


def test_a_heatmap_has_segment_numbers_a_colour_legend_a_text_alternative_and_its_table() -> None:
    # Prepare
    k = 20
    matrix = [[0.6 if i == j else (0.4 if j == i + 1 or (i == k - 1 and j == i - 1) else 0.0) for j in range(k)]
              for i in range(k)]
    # Execute
    figure = heatmap("Moves, service none", matrix, list(range(1, k + 1)))
    svg = _svg(figure)
    # Assert
    title, desc = _alternative(svg)
    assert title == "Moves, service none" and "20 by 20" in desc and "0.60" in desc
    assert {str(n) for n in range(1, k + 1, 2)} <= set(_ticks(svg))
    legend = [r for r in svg.iter(f"{SVG}rect") if r.get("class") == "legend"]
    assert len(legend) == 6 and "probability:" in "".join(t.text or "" for t in svg.iter(f"{SVG}text"))
    assert "to segment →" in figure and "← from segment" in figure
    assert "<details class=\"chart-data\"><summary>Data table: Moves, service none" in figure
    assert figure.count("<tr>") == 1 + k and "0.600" in figure


def test_a_band_has_its_axis_units_and_a_visible_band() -> None:
    years = list(range(2024, 2035))
    estimate = [8000 + 100 * i for i in range(11)]
    figure = band_panel("Projected demand: home_care", years, estimate, [e - 200 for e in estimate],
                        [e + 200 for e in estimate], unit="residents")
    svg = _svg(figure)
    _, desc = _alternative(svg)
    band = next(p for p in svg.iter(f"{SVG}polygon") if p.get("class") == "band")
    assert float(band.get("fill-opacity") or 0) >= 0.25
    ys = [float(p.split(",")[1]) for p in (band.get("points") or "").split()]
    assert max(ys) - min(ys) > 60                 # the axis fits the band: it spans much of the plot's height
    assert "2024" in _ticks(svg) and "2034" in _ticks(svg) and "residents" in figure and "not at zero" in desc
    assert "<th scope=\"col\">estimate (residents)</th>" in figure and figure.count("<tr>") == 12


def test_a_coefficient_plot_has_a_scale_a_zero_line_and_its_table() -> None:
    figure = coefficient_plot("Coefficients", [("age", 0.8, 0.5, 1.1), ("income", -0.3, -0.9, 0.2)], "log-odds")
    svg = _svg(figure)
    _, desc = _alternative(svg)
    assert "1 of the 2 intervals exclude 0" in desc and "0 = no association" in figure
    assert len(_ticks(svg)) >= 4 and "log-odds" in figure and "−0.30" in figure


def test_a_budget_bar_splits_spent_this_study_and_what_is_left() -> None:
    figure = budget_bar("espoo/health_care", before=0.05, this=0.025, cap=0.1, words="ε 1.00 of 3.00")
    svg = _svg(figure)
    widths = {r.get("class"): float(r.get("width") or 0) for r in svg.iter(f"{SVG}rect")}
    assert widths["spent"] == pytest.approx(2 * widths["this-study"], rel=0.01)
    assert widths["remaining"] == pytest.approx(widths["this-study"], rel=0.01)
    _, desc = _alternative(svg)
    assert "50.0 % spent by earlier studies, 25.0 % by this study, 25.0 % left" in desc


def test_a_step_line_marks_every_charge_and_the_cap() -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    figure = step_line("ε spent", [(start + dt.timedelta(hours=1), 1.0, "s1"), (start + dt.timedelta(hours=2), 1.6, "s2")],
                       [(start, 3.0)], start + dt.timedelta(hours=3))
    svg = _svg(figure)
    _, desc = _alternative(svg)
    assert len([c for c in svg.iter(f"{SVG}circle") if c.get("class") == "approval"]) == 2
    assert any(p.get("class") == "cap" for p in svg.iter(f"{SVG}polyline")) and "cap of ε 3.00" in desc
    assert "time (UTC)" in figure and len(_ticks(svg)) >= 6


def _transition_result() -> dict[str, Any]:
    p = [[0.7, 0.3, 0.0], [0.1, 0.6, 0.3], [0.0, 0.2, 0.8]]
    interval = {"probabilities": p, "lower": [[max(v - 0.05, 0) for v in r] for r in p],
                "upper": [[min(v + 0.05, 1) for v in r] for r in p]}
    demand = {"unit": "residents", "services": ["none", "home_care"],
              "estimate": [[1000.0 + i, 50.0 + i] for i in range(4)], "lower": [[990.0 + i, 45.0 + i] for i in range(4)],
              "upper": [[1010.0 + i, 55.0 + i] for i in range(4)]}
    return {"study_id": "t", "status": "completed", "datasets": ["espoo/health_care"],
            "privacy": {"rho": 0.024355947, "epsilon": 0.9999994864512444, "delta": 1e-6, "mechanism": "gaussian",
                        "per_dataset": {"espoo/health_care": {"rho": 0.024355947, "rho_units": 24355947}}},
            "outputs": {"states": [1, 2, 3], "transition_matrices": {"none": p, "home_care": p},
                        "transition_intervals": {"none": interval, "home_care": interval},
                        "projection": {"years": [2024, 2025, 2026, 2027], "model": "m", "start": "s",
                                       "service_demand": demand}}}


def test_every_chart_of_a_report_has_a_text_alternative_and_a_table_and_numbers_read_well() -> None:
    # Prepare
    register = {"id": "t", "name": "T", "purpose": "Plan services", "legal_basis": "Act 552/2019",
                "responsible_organisation": "City of Espoo", "contact": "x@espoo.example", "template": "health_transitions",
                "status": "released", "data_period": "2024", "datasets": ["espoo/health_care"], "contract": "health_care",
                "variables": ["year", "health_segment"], "privacy_unit": "resident",
                "privacy": {"espoo/health_care": {"epsilon": 0.999999, "delta": 1e-6, "rho": 0.0243}},
                "mechanism": "Counts with Gaussian noise.", "output_kinds": ["noisy counts"],
                "human_oversight": [{"dataset": "espoo/health_care", "decision": "approve", "by": "officer",
                                     "at": "2026-12-01T10:00:00+00:00"}],
                "dates": {"drafted": None, "approved": "2026-12-01T10:00:00+00:00", "started": None, "finished": None}}
    balances = [{"name": "espoo/health_care", "period": "2024", "cap": {"epsilon": 3.0, "rho": 0.185},
                 "spent": {"epsilon": 1.0, "rho": 0.0244}}]
    # Execute
    page, _ = render_report(_transition_result(), "Transitions", balances, register)
    # Assert
    figures = re.findall(r"<figure class=\"plot (\w+)\">(.*?)</figure>", page, re.S)
    kinds = [k for k, _ in figures]
    assert kinds.count("heatmap") == 2 and kinds.count("projection") == 2 and kinds.count("budget") == 1
    for kind, body in figures:
        _alternative(_svg(body))
        if kind != "budget":
            assert "Data table:" in body, kind
    assert "0.9999994864512444" not in page and "ε 1.00" in page
    entry = page[page.index("<h2>Public register entry</h2>"):]
    assert "{" not in entry and "approved by officer, the privacy officer for espoo/health_care, on 1 December 2026" in entry
    assert "<script" not in page and not re.search(r"\b(src|href)\s*=|url\(", page)
