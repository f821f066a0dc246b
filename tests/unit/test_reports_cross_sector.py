"""The report of a cross-sector count study: plain-language box, forest plot, factor and pair tables, CSVs.

Results are made the way a run makes them — the child-welfare template planned against the contracts
(so the privacy dict and noise scales are the real ones) and ``cross_sector_outputs`` over released
counts — with the counts drawn here instead of by the nodes: a small cohort like the 20,000-resident
demo (mostly noise), a large one like Espoo's (tight intervals), and one whose noise swamps everything.
"""

from __future__ import annotations

import html
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coordinator.reports import render_report, write_report
from federation.privacy import epsilon, plan_study
from federation.templates import build_spec
from federation.vertical.results import STABILITY_EPSILONS, choose_pairs, cross_sector_outputs, noise_scale_at
from federation.vertical.run import Released
from schemas import ContractCatalog

TOP = 20
SMALL_COHORT = 4_136     # children 0–17 among 20,000 residents, as in the demo's sample run
LARGE_COHORT = 62_000    # children among Espoo's 300,000 residents
MEDIUM_COHORT = 20_000   # where some releases' counts determine the adjusted model and some do not
BASE_RISK = 0.06
SVG_NAMESPACE = 'xmlns="http://www.w3.org/2000/svg"'


def _make_result(children: int, seed: int, noise_factor: float = 1.0) -> dict[str, Any]:
    """A completed cross-sector result: 280 factors, 15 of them with OR ≈ 3, pairs as a run would choose them."""
    catalog = ContractCatalog()
    spec = build_spec("child_welfare_risk_factors", "rf-report", "2024", {"municipality": "espoo", "epsilon": 1.0},
                      catalog)
    plan = plan_study(spec, catalog)
    assert spec.cross_sector is not None and plan.cross_sector is not None
    cross, noise = plan.cross_sector, plan.cross_sector.noise
    rng = np.random.default_rng(seed)

    def noisy(value: float, sd: float) -> tuple[float, float]:
        return float(round(value + rng.normal(0.0, sd * noise_factor))), sd * noise_factor

    released = Released()
    released.cohort_size = noisy(children, noise.cohort)
    released.cases = noisy(children * BASE_RISK, noise.outcome_stage1)
    prevalence: dict[str, float] = {}
    for dataset, names in cross.factors.items():
        for k, name in enumerate(names):
            prevalence[name] = 0.03 + 0.015 * (k % 10)
            odds = (3.0 if k % 20 == 0 else 1.0) * BASE_RISK / (1 - BASE_RISK)
            exposed = children * prevalence[name]
            released.exposed[name] = noisy(exposed, noise.local(dataset))
            released.exposed_cases[name] = noisy(exposed * odds / (1 + odds),
                                                 math.hypot(noise.factor_stage1[dataset], noise.outcome_stage1))
    across = math.hypot(noise.factor_stage2, noise.outcome_stage2)
    holder = cross.holder
    for a, b in choose_pairs(spec.cross_sector, cross, released):
        both = children * prevalence[a] * prevalence[b]
        released.both[(a, b)] = noisy(both, noise.factor_stage2 if holder[a] == holder[b] else across)
        released.both_cases[(a, b)] = noisy(both * 2 * BASE_RISK, across)
    noise_at = {e: noise_scale_at(spec, cross, catalog, e) for e in STABILITY_EPSILONS}
    return {"study_id": "rf-report", "status": "completed", "datasets": list(spec.datasets),
            "privacy": plan.privacy_json(),
            "outputs": cross_sector_outputs(spec.cross_sector, cross, released, noise_at)}


@pytest.fixture(scope="module")
def sample() -> dict[str, Any]:
    return _make_result(SMALL_COHORT, seed=7)


@pytest.fixture(scope="module")
def large() -> dict[str, Any]:
    return _make_result(LARGE_COHORT, seed=8)


def _forest_svg(page: str) -> ET.Element:
    figure = page.index('<figure class="plot forest">')
    start, end = page.index("<svg", figure), page.index("</svg>", figure) + len("</svg>")
    return ET.fromstring(page[start:end])


def _classes(svg: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in svg.iter() if name in (e.get("class") or "").split()]


# -- the page ----------------------------------------------------------------------------------------------------

def test_the_page_has_a_forest_plot_svg_with_axis_ticks_and_the_or_1_line(sample: dict[str, Any]) -> None:
    # Prepare
    result = sample
    # Execute
    page, _ = render_report(result, "Risk factors")
    # Assert: an accessible image, well-formed, with labelled ticks on a log axis and a line at OR = 1
    svg = _forest_svg(page)
    assert svg.get("role") == "img" and "odds ratios" in (svg.get("aria-label") or "")
    assert svg.find("{http://www.w3.org/2000/svg}title") is not None
    ticks = [float(t.text or "nan") for t in _classes(svg, "tick")]
    assert len(ticks) >= 3 and 1.0 in ticks
    ratios = [b / a for a, b in zip(ticks, ticks[1:])]
    assert all(r == pytest.approx(ratios[0]) for r in ratios) and ratios[0] in (2.0, 10.0)
    (line,) = _classes(svg, "null-line")
    one = ticks.index(1.0)
    tick_lines = [e for e in svg.iter("{http://www.w3.org/2000/svg}line") if e.get("y2") != e.get("y1")]
    assert any(e.get("x1") == line.get("x1") for e in tick_lines if e is not line), f"tick {ticks[one]} ≠ OR=1 line"
    assert "OR = 1" in page


def test_the_plot_and_the_table_have_one_row_per_top_factor(sample: dict[str, Any]) -> None:
    # Prepare: the sample (280 factors) and a result with only 7
    few = {**sample, "outputs": {**sample["outputs"], "ranking": sample["outputs"]["ranking"][:7],
                                 "factors": {f: sample["outputs"]["factors"][f] for f in sample["outputs"]["ranking"][:7]}}}
    # Execute
    pages = {n: render_report(r, "Risk factors")[0] for n, r in ((280, sample), (7, few))}
    # Assert: min(20, factors) rows in each, in ranking order
    for n, page in pages.items():
        svg = _forest_svg(page)
        assert len(_classes(svg, "forest-row")) == min(TOP, n)
        assert page.count("<tr class='factor-row'>") == min(TOP, n)
        assert len(_classes(svg, "estimate")) == min(TOP, n)
    ranking = sample["outputs"]["ranking"]
    positions = [pages[280].index(f"<td>{name}</td>") for name in ranking[:TOP]]
    assert positions == sorted(positions) and f"<td>{ranking[TOP]}</td>" not in pages[280]


def test_factors_whose_interval_excludes_1_are_drawn_apart_from_the_rest(large: dict[str, Any]) -> None:
    # Prepare: a large cohort's 10 strongest factors, whose intervals clear 1, and its 10 weakest
    outputs = large["outputs"]
    kept = outputs["ranking"][:10] + outputs["ranking"][-10:]
    mixed = {**large, "outputs": {**outputs, "ranking": kept, "factors": {f: outputs["factors"][f] for f in kept}}}
    top = [outputs["factors"][f]["odds_ratio"] for f in kept]
    clear = sum(1 for m in top if m["lower"] > 1 or m["upper"] < 1)
    # Execute
    page, _ = render_report(mixed, "Risk factors")
    # Assert
    svg = _forest_svg(page)
    assert 0 < clear < TOP
    assert len(_classes(svg, "excludes-1")) == clear and len(_classes(svg, "includes-1")) == TOP - clear
    assert f"Filled squares: the interval excludes 1 ({clear} of {TOP})" in page


def test_the_pairs_table_shows_the_top_20_pairs_and_how_pairs_were_chosen(sample: dict[str, Any]) -> None:
    # Prepare
    pairs = sample["outputs"]["pairs"]
    # Execute
    page, _ = render_report(sample, "Risk factors")
    # Assert
    assert len(pairs) > TOP
    assert page.count("<tr class='pair-row'>") == TOP
    assert html.escape(sample["outputs"]["pair_rule"]) in page
    assert f"{len(pairs)} pairs of factors were released" in page
    first = page.index("<tr class='pair-row'>")
    assert pairs[0]["pair"][0] in page[first:first + 400] and pairs[0]["kind"] in page[first:first + 600]
    assert "ratio of odds ratios" in page and "RERI" in page


def test_the_plain_language_box_comes_first_and_says_there_are_no_per_resident_scores(sample: dict[str, Any]) -> None:
    # Prepare
    outputs, scales = sample["outputs"], sample["privacy"]["noise_scales"]
    # Execute
    page, _ = render_report(sample, "Risk factors")
    # Assert: before the plot; cohort, outcome, releases, ranking, no scores, and the noise of each kind of count
    box = page[page.index("<section class='plain'"):page.index("</section>")]
    assert page.index("<section class='plain'") < page.index('<figure class="plot forest">')
    assert html.escape(outputs["per_resident_scores"]) in box
    assert html.escape(outputs["ranking_statistic"]) in box
    assert outputs["cohort"]["dataset"] in box and outputs["cohort"]["reference_date"] in box and "aged 0–17" in box
    assert f"{outputs['cohort']['size']:,.0f} people" in box and html.escape(outputs["outcome"]["definition"]) in box
    assert f"{sum(outputs['released_counts'].values()):,} noisy counts" in box
    assert "differentially private release" in box
    assert f"± {scales['cohort_size']:,.0f}</td>" in box and f"± {scales['outcome']:,.0f}</td>" in box
    exposed_cases = [math.hypot(s, scales["outcome"]) for s in scales["factor_nodes"].values()]
    assert f"± {min(exposed_cases):,.0f} to {max(exposed_cases):,.0f}" in box



def test_a_case_count_the_noise_put_at_or_below_zero_is_said_in_words_not_as_a_count_of_cases() -> None:
    # Prepare: a town of 900 children (~54 cases against an outcome noise sd of about 100): a seed whose noisy
    # count of cases came out negative, and one where it did not
    results = {seed: _make_result(900, seed=seed) for seed in range(6)}
    negative = next(r for r in results.values() if r["outputs"]["outcome"]["cases"] <= 0)
    positive = next(r for r in results.values() if r["outputs"]["outcome"]["cases"] > 0)
    # Execute
    pages = [render_report(r, "Risk factors")[0] for r in (negative, positive)]
    # Assert
    boxes = [page[page.index("<section class='plain'"):page.index("</section>")] for page in pages]
    cases = negative["outputs"]["outcome"]["cases"]
    assert f"the noisy count of cases came out at {cases:,.0f}".replace("-", "−") in boxes[0]
    assert " cases (a noisy count" not in boxes[0]
    assert f"{positive['outputs']['outcome']['cases']:,.0f} cases (a noisy count" in boxes[1]

def test_the_page_is_self_contained_with_no_script_and_no_url(sample: dict[str, Any]) -> None:
    # Prepare
    result = sample
    # Execute
    page, _ = render_report(result, "Risk factors")
    # Assert: the SVG namespace is the only URL-like text, and nothing is loaded
    assert "<script" not in page.lower()
    assert re.findall(r"https?://", page.replace(SVG_NAMESPACE, "")) == []
    assert not re.search(r"\b(src|href)\s*=|url\(|@import", page)


# -- CSV tables --------------------------------------------------------------------------------------------------

def test_the_csv_tables_hold_every_factor_and_pair_with_their_headers(sample: dict[str, Any], tmp_path: Path) -> None:
    # Prepare
    outputs = sample["outputs"]
    # Execute
    _, tables = render_report(sample, "Risk factors")
    write_report(sample, tmp_path, "Risk factors")
    # Assert
    factor_header, factor_rows = tables["factors.csv"]
    assert factor_header == ["rank", "factor", "dataset", "prevalence", "exposed", "exposed_cases", "odds_ratio",
                             "or_lower95", "or_upper95", "risk_ratio", "rr_lower95", "rr_upper95", "z", "noise_share"]
    assert [r[1] for r in factor_rows] == outputs["ranking"] and [r[0] for r in factor_rows] == list(range(1, 281))
    first = outputs["factors"][outputs["ranking"][0]]
    assert factor_rows[0][5] == first["cells"]["exposed_cases"] and factor_rows[0][7] == first["odds_ratio"]["lower"]
    pair_header, pair_rows = tables["pairs.csv"]
    assert pair_header == ["rank", "factor_a", "factor_b", "kind", "dataset_a", "dataset_b", "count_11", "cases_11",
                           "joint_or", "joint_or_lower95", "joint_or_upper95", "ror", "ror_lower95", "ror_upper95",
                           "reri", "reri_lower95", "reri_upper95", "z", "noise_share"]
    assert [r[1:3] for r in pair_rows] == [p["pair"] for p in outputs["pairs"]]
    assert (tmp_path / "factors.csv").read_text().count("\n") == 1 + len(outputs["factors"])
    assert (tmp_path / "pairs.csv").read_text().count("\n") == 1 + len(outputs["pairs"])


# -- noise that swamps everything --------------------------------------------------------------------------------

def test_astronomically_wide_intervals_render_with_their_clipped_ends_marked() -> None:
    # Prepare: noise ~10⁵ times the real one (bounds at e^±700), and one hand-made infinite interval
    result = _make_result(SMALL_COHORT, seed=9, noise_factor=1e5)
    first = result["outputs"]["ranking"][0]
    result["outputs"]["factors"][first]["odds_ratio"].update(lower=0.0, upper=math.inf)
    # Execute
    page, tables = render_report(result, "Risk factors")
    # Assert: every drawn interval is cut at both ends and marked; the axis stays within its limits; said in words
    svg = _forest_svg(page)
    ticks = [float(t.text or "nan") for t in _classes(svg, "tick")]
    assert 1e-3 <= min(ticks) and max(ticks) <= 1e3
    assert len(_classes(svg, "clipped")) == 2 * TOP
    assert f"({TOP} of {TOP} intervals are cut this way)" in page
    assert "×10³⁰⁴" in page and "∞" in page
    assert len(tables["factors.csv"][1]) == 280


# -- what the page kept ------------------------------------------------------------------------------------------

def test_privacy_spent_and_the_mechanism_table_read_well_for_this_result(sample: dict[str, Any]) -> None:
    # Prepare: the ledger's balances of two of the datasets
    balances = [{"name": "espoo/child_health", "cap": {"epsilon": 5.0}, "spent": {"epsilon": 1.0}},
                {"name": "espoo/population_register", "cap": {"epsilon": 5.0}, "spent": {"epsilon": 2.0}}]
    # Execute
    page, _ = render_report(sample, "Risk factors", balances)
    # Assert: a budget row per dataset with the ε of its own charge (as the public register gives it);
    # nested noise scales one line per dataset, not a dict's repr
    privacy = sample["privacy"]
    spent = page[page.index("<h2>Privacy spent</h2>"):page.index("<h2>Mechanism</h2>")]
    assert spent.count('class="plot budget"') == len(balances)   # a bar where the dataset's budget is known
    assert spent.count("<tr><td>espoo/") == len(privacy["per_dataset"])
    assert "ε 2.00 spent of 5.00 for the period" in spent and "<td>2.00 of 5.00</td>" in spent
    factor_rho = privacy["per_dataset"]["espoo/child_health"]["rho"]
    assert factor_rho < privacy["rho"]
    factor_eps = epsilon(factor_rho, privacy["delta"])
    assert f"<td>ε {factor_eps:.2f} (ρ {factor_rho:.3g})</td>" in spent
    assert f"<td>ε {privacy['epsilon']:.2f} (ρ {privacy['rho']:.3g})</td>" in spent
    mechanism = page[page.index("<h2>Mechanism</h2>"):]
    assert "{&#x27;" not in mechanism and "{'" not in mechanism
    assert f"<li>espoo/education: {sample['privacy']['noise_scales']['exposed']['espoo/education']:.4g}</li>" in mechanism
    counts = sample["privacy"]["counts_per_resident"]["espoo/population_register"]
    assert f"<tr><th>counts_per_resident</th><td><ul class='facts'><li>espoo/population_register: {counts}</li>" in mechanism


def test_the_privacy_utility_table_keeps_more_of_the_top_10_as_epsilon_grows(large: dict[str, Any]) -> None:
    # Prepare: the large cohort's result, with the table the ServerApp adds
    utility = large["outputs"]["privacy_utility"]
    rows = {r["epsilon"]: r for r in utility["rows"]}
    # Execute
    page, _ = render_report(large, "Risk factors")
    # Assert: one row per ε, less noise at more ε, and more of the top 10 kept (the cohort's 14 strong factors
    # stand out at ε = 8, less so at 0.5); the report shows the table and marks this study's row
    assert sorted(rows) == list(STABILITY_EPSILONS)
    assert rows[8.0]["factors_kept"]["mean"] >= rows[0.5]["factors_kept"]["mean"] + 2
    assert rows[8.0]["factors_kept"]["mean"] >= 7
    assert rows[2.0]["noise_sd_exposed_cases"] < rows[1.0]["noise_sd_exposed_cases"] < rows[0.5]["noise_sd_exposed_cases"]
    assert rows[8.0]["adjusted_kept"]["mean"] >= rows[0.5]["adjusted_kept"]["mean"] + 1
    assert "Privacy against utility" in page and "1 (this study)" in page


def test_the_privacy_utility_table_gives_the_auc_each_epsilon_would_report_narrowing_as_epsilon_grows(
        large: dict[str, Any]) -> None:
    # Prepare
    utility = large["outputs"]["privacy_utility"]
    rows = {r["epsilon"]: r for r in utility["rows"]}
    exact = utility["adjusted_auc_without_noise"]
    # Execute
    page, _ = render_report(large, "Risk factors")
    # Assert: the AUC's spread over the draws is far narrower at ε = 8 than at 1 or 0.5 (about 0.03 against
    # 0.14–0.24; the simulation's draws are OpenDP's, unseeded, so 1 and 0.5 are not compared with each other)
    # and closes in on the AUC of the counts themselves; the page shows each row's mean and range
    width = {e: r["adjusted_auc"]["max"] - r["adjusted_auc"]["min"] for e, r in rows.items()}
    assert width[8.0] < 0.5 * min(width[1.0], width[0.5]), width
    assert abs(rows[8.0]["adjusted_auc"]["mean"] - exact) < abs(rows[0.5]["adjusted_auc"]["mean"] - exact) + 0.01
    assert abs(rows[8.0]["adjusted_auc"]["mean"] - exact) < 0.02
    table = page[page.index("Privacy against utility"):]
    auc = rows[1.0]["adjusted_auc"]
    assert f"{auc['mean']:.3f} [{auc['min']:.3f}–{auc['max']:.3f}]" in table
    assert f"an AUC of {exact:.3f}" in table


def test_the_noise_at_another_epsilon_is_the_plan_recomputed_there() -> None:
    # Prepare
    catalog = ContractCatalog()
    spec = build_spec("child_welfare_risk_factors", "rf", "2024", {"municipality": "espoo", "epsilon": 1.0}, catalog)
    plan = plan_study(spec, catalog).cross_sector
    other = plan_study(build_spec("child_welfare_risk_factors", "rf", "2024",
                                  {"municipality": "espoo", "epsilon": 2.0}, catalog), catalog).cross_sector
    assert plan is not None and other is not None
    # Execute
    same, double = noise_scale_at(spec, plan, catalog, 1.0), noise_scale_at(spec, plan, catalog, 2.0)
    # Assert: its own ε changes nothing; at ε = 2 every count's noise is the ε = 2 plan's
    assert same == pytest.approx(1.0)
    assert double * plan.noise.outcome_stage1 == pytest.approx(other.noise.outcome_stage1)
    assert double * plan.noise.factor_stage2 == pytest.approx(other.noise.factor_stage2)


def test_a_privacy_utility_table_that_cannot_be_simulated_costs_the_study_nothing_but_the_table(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: the table's simulation fails (a stand-in for any numerical failure after every release was made)
    import federation.vertical.results as results

    def fails(*_: object, **__: object) -> dict[str, Any]:
        raise np.linalg.LinAlgError("singular matrix")

    monkeypatch.setattr(results, "ranking_stability", fails)
    # Execute
    result = _make_result(SMALL_COHORT, seed=9)
    page, _ = render_report(result, "Risk factors")
    # Assert: every other output is there; the table says why it is missing
    outputs = result["outputs"]
    assert outputs["ranking"] and outputs["adjusted_model"] is not None
    assert "LinAlgError: singular matrix" in outputs["privacy_utility"]["unavailable"]
    assert "could not be simulated" in page


def test_the_adjusted_models_evaluation_is_on_the_page_with_its_interval(large: dict[str, Any]) -> None:
    # Prepare
    evaluation = large["outputs"]["adjusted_model"]["evaluation"]
    auc = evaluation["auc"]
    # Execute
    page, _ = render_report(large, "Risk factors")
    # Assert
    section = page[page.index("How well the model predicts"):]
    assert f"{auc['estimate']:.3f} ({auc['lower']:.3f}–{auc['upper']:.3f})" in section
    assert "No per-resident score was formed anywhere" in section
    assert f"{100 * evaluation['calibration_in_the_large']['observed_rate']:.1f} % observed" in section


def test_an_evaluation_that_cannot_be_computed_costs_the_study_nothing_but_the_evaluation(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare
    import federation.vertical.model as model

    def fails(*_: object, **__: object) -> dict[str, Any]:
        raise FloatingPointError("overflow")

    monkeypatch.setattr(model, "evaluate", fails)
    # Execute: a release whose counts determine the model (seed 0)
    result = _make_result(MEDIUM_COHORT, seed=0)
    page, _ = render_report(result, "Risk factors")
    # Assert
    adjusted = result["outputs"]["adjusted_model"]
    assert adjusted["factors"] and "FloatingPointError: overflow" in adjusted["evaluation"]["unavailable"]
    assert "Not available: the evaluation could not be computed" in page


def test_a_brier_score_that_the_noise_put_out_of_range_is_not_shown_as_a_number() -> None:
    # Prepare: a release whose counts determine the model but put its Brier score out of range (seed 3)
    result = _make_result(MEDIUM_COHORT, seed=3)
    evaluation = result["outputs"]["adjusted_model"]["evaluation"]
    # Execute
    page, _ = render_report(result, "Risk factors")
    # Assert
    assert evaluation["scaled_brier"] is None and "the noise, not the data, decided it" in evaluation["brier_unavailable"]
    section = page[page.index("How well the model predicts"):]
    row = section[section.index("scaled Brier score"):]
    row = row[:row.index("</tr>")]
    assert "<td class='num'>—</td>" in row and html.escape(evaluation["brier_unavailable"]) in row
    assert "%" not in row.split("</td>")[1]


def test_a_model_that_cannot_be_fitted_costs_the_study_nothing_but_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: the fit fails (a stand-in for counts the solver cannot take, e.g. a NaN)
    import federation.vertical.model as model

    def fails(*_: object, **__: object) -> dict[str, Any]:
        raise np.linalg.LinAlgError("Eigenvalues did not converge")

    monkeypatch.setattr(model, "adjusted_model", fails)
    monkeypatch.setattr("federation.vertical.results.ranking_stability", lambda *_, **__: {"rows": []})
    # Execute
    result = _make_result(SMALL_COHORT, seed=9)
    page, tables = render_report(result, "Risk factors")
    # Assert: the one-at-a-time tables and pairs stand; the model says why it is missing
    outputs = result["outputs"]
    assert outputs["ranking"] and outputs["pairs"]
    assert outputs["adjusted_model"]["factors"] == [] and "LinAlgError" in outputs["adjusted_model"]["unavailable"]
    assert "Not available: the model could not be fitted" in page
    assert tables["adjusted.csv"][1] == []


def test_a_model_the_noisy_counts_do_not_determine_is_withheld_and_the_page_says_why(sample: dict[str, Any]) -> None:
    # Prepare: the small cohort (4,136 children): the noise on its pair counts leaves XᵀX indefinite, where
    # flooring its eigenvalues used to print odds ratios of 10³⁰⁴
    adjusted = sample["outputs"]["adjusted_model"]
    # Execute
    page, tables = render_report(sample, "Risk factors")
    # Assert
    assert adjusted["factors"] == [] and "evaluation" not in adjusted
    assert "the released counts do not determine the adjusted model" in adjusted["unavailable"]
    section = page[page.index("The screened factors adjusted for each other"):]
    assert section.startswith("The screened factors adjusted for each other</h3><p>Not available: the noise outweighs")
    adjusted_section = section[:section.find("<h3>")]   # up to the next section (privacy against utility)
    assert "How well the model predicts" not in page and "<table" not in adjusted_section
    assert tables["adjusted.csv"][1] == []
