"""The study report's private evaluation section, from evaluations the real estimator computes."""

from __future__ import annotations

import html
import re
from typing import Any

import numpy as np

from coordinator.reports import render_report
from federation.evaluation import private_evaluation
from federation.privacy import gaussian_release
from federation.tasks import Design, evaluation_statistics, predict_proba


def _model_result(evaluation: dict[str, Any]) -> dict[str, Any]:
    return {"study_id": "m", "status": "completed", "datasets": ["espoo/health_care"],
            "privacy": {"rho": 0.02, "epsilon": 0.9, "delta": 1e-6, "mechanism": "gaussian",
                        "per_dataset": {"espoo/health_care": {"rho": 0.02, "rho_units": 20000000}}},
            "outputs": {"coefficients": {"1": {"age": 0.4}}, "evaluation": evaluation}}


def _section(page: str) -> str:
    return page.split("<h2>Private evaluation</h2>", 1)[1].split("<h2>", 1)[0]


def test_a_model_whose_noisy_outcome_rows_came_to_zero_gets_a_report_that_says_why_there_is_no_auc() -> None:
    # Prepare: noise has pushed the rows with the outcome below zero in total
    negatives = np.array([400.0, 900.0, 700.0, 300.0])
    positives = np.array([-30.0, 12.0, -25.0, 8.0])
    evaluation = private_evaluation(np.vstack([negatives, positives]), noise_sd=20.0)
    # Execute
    page, _ = render_report(_model_result(evaluation), "Care needs")
    # Assert
    section = _section(page)
    assert evaluation["auc"] is None
    assert "AUC not available" in section and "with the outcome -35, without it 2,300" in section
    assert "<h2>Privacy spent</h2>" in page


def test_a_model_with_an_auc_gets_it_with_its_interval_and_the_calibration_table() -> None:
    # Prepare
    negatives = np.array([900.0, 700.0, 300.0, 100.0])
    positives = np.array([20.0, 60.0, 120.0, 200.0])
    evaluation = private_evaluation(np.vstack([negatives, positives]), noise_sd=2.0)
    low, high = evaluation["auc_interval"]
    # Execute
    page, _ = render_report(_model_result(evaluation), "Care needs")
    # Assert
    section = _section(page)
    assert f"AUC {evaluation['auc']:.3f} (95 % interval {low:.3f} – {high:.3f})" in section
    assert html.escape(evaluation["note"]) in section
    assert section.count("<tr><td class='num'>") == len(evaluation["calibration"]) > 0


def test_a_model_whose_bins_all_drown_in_the_noise_says_so_instead_of_an_empty_table() -> None:
    # Prepare: too few rows for any group of bins to outweigh noise of sd 50
    evaluation = private_evaluation(np.vstack([np.array([30.0, 20.0]), np.array([5.0, 9.0])]), noise_sd=50.0)
    # Execute
    page, _ = render_report(_model_result(evaluation), "Care needs")
    # Assert
    section = _section(page)
    assert evaluation["calibration"] == []
    assert "no group of score bins has rows that outweigh the noise" in section and "<table>" not in section


def test_an_auc_whose_noise_spans_chance_and_a_perfect_model_is_shown_as_not_informative() -> None:
    # Prepare: a few hundred rows under noise of sd 150 per bin, as in the demo test's small town
    negatives = np.array([120.0, 300.0, -90.0, 210.0, 60.0])
    positives = np.array([-40.0, 150.0, 20.0, -80.0, 95.0])
    evaluation = private_evaluation(np.vstack([negatives, positives]), noise_sd=150.0)
    # Execute
    page, _ = render_report(_model_result(evaluation), "Care needs")
    # Assert
    section = _section(page)
    low, high = evaluation["auc_interval"]
    assert evaluation["auc_informative"] is False
    assert "AUC not informative" in section and "from noisy score histograms (" not in section
    if 0 <= evaluation["auc"] <= 1:
        assert f"its 95 % noise interval, {low:.2f} to {high:.2f}, spans both chance (0.5) and a perfect model" in section
    else:
        assert f"the estimate, {evaluation['auc']:.2f}, fell outside the possible range 0–1" in section


def test_the_report_renders_for_every_noise_draw_at_the_demo_tests_size() -> None:
    # Prepare: exact score histograms of a rare outcome (~1,000 of 40,000 rows) and the per-bin noise sd the demo
    # test's care-needs model had (139): the noisy class total falls to zero or below in about one draw in six
    rng = np.random.default_rng(5)   # test data, not privacy noise
    rows = 40_000
    x = np.column_stack([rng.random((rows, 2)), np.ones(rows)])
    params = np.array([[4.0, 1.5, -7.0]])
    y = (rng.random(rows) < predict_proba(params, x)[:, 1]).astype(np.int64)
    histogram, _ = evaluation_statistics(Design(x=x, y=y, resident=np.arange(rows), residents=rows), params, 50)
    # Execute: 200 releases (OpenDP's noise), each evaluated and rendered
    found = []
    for _ in range(200):
        evaluation = private_evaluation(gaussian_release(histogram, 139.0), 139.0)
        found.append((evaluation, _section(render_report(_model_result(evaluation), "Care needs")[0])))
    # Assert: every page renders and says which of the three cases it is in, and the draws reached all of them
    said = {"none": 0, "uninformative": 0, "auc": 0, "beyond": 0}
    for evaluation, section in found:
        if evaluation["auc"] is None:
            assert "AUC not available" in section
            said["none"] += 1
        elif not evaluation["auc_informative"]:
            assert "AUC not informative" in section
            said["uninformative"] += 1
        else:
            assert f"AUC {evaluation['auc']:.3f} (95 % interval" in section and "not informative" not in section
            said["auc"] += 1
            shown = re.search(r"95 % interval (\S+) – (\S+)\)", section)
            assert shown is not None and all(0 <= float(v) <= 1 for v in shown.groups())
        # no rate on the page lies outside 0–1; one the noise put there is marked and explained
        cells = re.findall(r"<td class='num'>([^<]*)</td>", section)
        rates = [v for cell in cells if "±" not in cell for v in cell.split(" – ") if "." in v]   # not row counts
        assert all(0 <= float(v.rstrip("*")) <= 1 for v in rates), rates
        beyond = any(not 0 <= v <= 1 for c in evaluation["calibration"]
                     for v in (c["predicted"], c["observed"], *c["calibration_interval"]))
        assert ("shown at the nearer bound" in section) is beyond
        said["beyond"] += beyond
    assert said["none"] > 0 and said["uninformative"] > 0 and said["beyond"] > 0, said
