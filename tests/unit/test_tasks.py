"""Task computations on tiny frames: transitions, cell counts, per-resident clipping."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from federation.privacy import TablePlan, newton_hessian_rounds
from federation.spec import TransitionSpec
from federation.tasks import (
    NewtonSolver, cell_counts, evaluation_statistics, from_upper_triangle, newton_statistics, transition_rows,
    upper_triangle,
)
from federation.tasks.logreg import Design, _clipped_gradient_sum, predict_proba
from schemas import ContractCatalog


def test_transitions_pair_consecutive_years_of_the_same_resident() -> None:
    frame = pd.DataFrame({"_resident": ["a", "a", "a", "b", "b", "c"],
                          "year": [2019, 2020, 2022, 2020, 2021, 2020],
                          "seg": [1.0, 2.0, 3.0, 5.0, 5.0, 7.0],
                          "svc": ["none", "care", "none", "none", "none", "none"]})
    moves = transition_rows(frame, TransitionSpec(time="year", state="seg", by="svc"))
    assert sorted(map(tuple, moves.to_numpy().tolist())) == [("none", 1.0, 2.0), ("none", 5.0, 5.0)]


def test_cell_counts_follow_the_plan_order_and_ignore_unknown_values() -> None:
    plan = TablePlan(columns=("svc",), cells=(("none",), ("care",)), sensitivity=1.0, noise_scale=1.0)
    counts = cell_counts(pd.DataFrame({"svc": ["care", "none", "care", "spa"]}), plan)
    assert counts.tolist() == [1.0, 2.0]


def test_each_residents_gradient_is_clipped_to_the_norm() -> None:
    # Prepare: one resident with many large rows, one with a single small row
    x = np.vstack([np.full((50, 3), 100.0), np.array([[0.001, 0.001, 1.0]])])
    design = Design(x=x, y=np.zeros(51, dtype=np.int64), resident=np.array([0] * 50 + [1]), residents=2)
    # Execute
    total = _clipped_gradient_sum(design, design.groups, np.zeros((1, 3)), clipping_norm=1.0)
    # Assert: the big resident contributes at most norm 1, so the sum is at most 2
    assert np.linalg.norm(total) <= 2.0 + 1e-9
    assert np.linalg.norm(total) > 1.0


@pytest.mark.parametrize("classes", [2, 4])
def test_clipped_gradient_sum_matches_a_resident_by_resident_reference(classes: int) -> None:
    # Prepare: residents with 1-6 rows each, rows shuffled, gradients both under and over the clipping norm
    rng = np.random.default_rng(7)
    resident = np.repeat(np.arange(300), rng.integers(1, 7, 300))
    rng.shuffle(resident)
    x = np.column_stack([rng.random((len(resident), 3)), np.ones(len(resident))])
    y = rng.integers(0, classes, len(resident))
    params = rng.normal(0.0, 2.0, (classes - 1, 4))
    design = Design(x=x, y=y, resident=resident, residents=300)
    expected = np.zeros(params.size)
    for r in range(300):
        rows = resident == r
        residual = predict_proba(params, x[rows]) - np.eye(classes)[y[rows]]
        gradient = (residual[:, 1:].T @ x[rows]).ravel()
        expected += gradient * min(1.0, 0.8 / np.linalg.norm(gradient))
    # Execute
    total = _clipped_gradient_sum(design, design.groups, params, clipping_norm=0.8)
    # Assert
    assert np.allclose(total.ravel(), expected, rtol=1e-10, atol=1e-10)


def test_private_evaluation_recovers_auc_and_covers_the_coefficients() -> None:
    # Prepare: a known binary model, exact (noise-free) statistics, as the server would sum them
    from sklearn.metrics import roc_auc_score

    from federation.privacy import plan_study
    from federation.results import evaluation_outputs
    from federation.spec import parse_spec
    from federation.tasks import Design, evaluation_statistics, predict_proba
    from schemas import ContractCatalog

    rng = np.random.default_rng(5)   # test data, not privacy noise
    x = np.column_stack([rng.random(20_000), np.ones(20_000)])
    truth = np.array([[2.5, -1.0]])
    y = (rng.random(20_000) < predict_proba(truth, x)[:, 1]).astype(np.int64)
    design = Design(x=x, y=y, resident=np.arange(20_000), residents=20_000)
    spec = parse_spec({"study_id": "e", "task": "dp_logreg", "contract": "health_care", "datasets": ["a/health_care"],
                       "privacy": {"epsilon": 1.0, "delta": 1e-6},
                       "model": {"outcome": "service_status", "positive": ["intensive"], "features": ["health_segment"],
                                 "evaluate": True}})
    plan = plan_study(spec, ContractCatalog().get("health_care"))
    # Execute
    histogram, fisher = evaluation_statistics(design, truth, 50)
    out = evaluation_outputs(spec, plan, truth, histogram, fisher, 20_000.0, 1)
    # Assert
    exact_auc = roc_auc_score(y, predict_proba(truth, x)[:, 1])
    assert abs(out["evaluation"]["auc"] - exact_auc) < 0.01
    assert all(abs(c["observed"] - c["predicted"]) < 0.1 for c in out["evaluation"]["calibration"])
    lo, hi = out["coefficient_intervals"]["positive"]["health_segment"]
    assert lo < 2.5 < hi and hi - lo < 2.0


def test_a_symmetric_matrix_travels_as_a_vector_of_the_same_norm_and_back() -> None:
    # Prepare
    rng = np.random.default_rng(3)
    a = rng.normal(size=(6, 6))
    matrix = a + a.T
    # Execute
    vector = upper_triangle(matrix)
    # Assert: an isometry (so the matrix's Frobenius sensitivity is the vector's L2 sensitivity), and invertible
    assert vector.shape == (21,)
    assert np.linalg.norm(vector) == pytest.approx(np.linalg.norm(matrix))
    assert np.allclose(from_upper_triangle(vector, 6), matrix)


@pytest.mark.parametrize("classes", [2, 3])
def test_newton_statistics_are_the_log_loss_gradient_and_curvature(classes: int) -> None:
    # Prepare: one row per resident, parameters small enough that no gradient is clipped
    rng = np.random.default_rng(11)
    x = np.column_stack([rng.random((400, 3)), np.ones(400)])
    y = rng.integers(0, classes, 400)
    design = Design(x=x, y=y, resident=np.arange(400), residents=400)
    params = rng.normal(0.0, 0.5, (classes - 1, 4))

    def loss(flat: np.ndarray) -> float:
        p = predict_proba(flat.reshape(params.shape), x)
        return float(-np.log(p[np.arange(400), y]).sum())

    # Execute
    gradient, hessian, trace = newton_statistics(design, params, clipping_norm=100.0, curvature=True)
    # Assert: against finite differences of the summed log loss
    eps = 1e-5
    flat = params.ravel()
    numeric_gradient = np.array([(loss(flat + eps * e) - loss(flat - eps * e)) / (2 * eps) for e in np.eye(flat.size)])
    assert np.allclose(gradient.ravel(), numeric_gradient, rtol=1e-5, atol=1e-5)
    assert hessian is not None and np.allclose(hessian, hessian.T)
    numeric_hessian = np.array([
        (newton_statistics(design, (flat + eps * e).reshape(params.shape), 100.0, False)[0].ravel()
         - newton_statistics(design, (flat - eps * e).reshape(params.shape), 100.0, False)[0].ravel()) / (2 * eps)
        for e in np.eye(flat.size)])
    assert np.allclose(hessian, numeric_hessian, rtol=1e-4, atol=1e-4)
    assert trace == pytest.approx(np.trace(hessian))


@pytest.mark.parametrize("classes", [2, 4])
def test_one_residents_curvature_and_trace_stay_within_the_planned_sensitivity(classes: int) -> None:
    # Prepare: the health-care contract (6 rows per resident, 4 numeric features); one resident whose rows sit at
    # the corners of the encoded box, at parameters that put the probabilities where the curvature is largest
    from federation.privacy import plan_study
    from federation.spec import parse_spec
    from schemas import ContractCatalog

    model: dict[str, object] = {"outcome": "service_status", "features": ["health_segment", "hospital_days",
                                                                          "specialist_visits", "primary_care_visits"]}
    if classes == 2:
        model["positive"] = ["intensive"]
    spec = parse_spec({"study_id": "b", "task": "dp_logreg", "contract": "health_care", "datasets": ["a/health_care"],
                       "privacy": {"epsilon": 1.0, "delta": 1e-6}, "model": model})
    plan = plan_study(spec, ContractCatalog().get("health_care"))
    assert plan.model is not None
    rng = np.random.default_rng(5)
    worst_hessian = worst_trace = 0.0
    for _ in range(200):
        x = np.column_stack([rng.integers(0, 2, (6, 4)).astype(float), np.ones(6)])
        design = Design(x=x, y=rng.integers(0, classes, 6), resident=np.zeros(6, dtype=np.int64), residents=1)
        params = rng.normal(0.0, 1.0, (classes - 1, 5))
        _, hessian, trace = newton_statistics(design, params, plan.model.clipping_norm, True)
        assert hessian is not None
        worst_hessian, worst_trace = max(worst_hessian, float(np.linalg.norm(hessian))), max(worst_trace, trace)
    # Assert
    assert worst_hessian <= plan.model.hessian_sensitivity
    assert worst_trace <= plan.model.trace_sensitivity


def test_one_residents_evaluation_histograms_stay_within_the_planned_sensitivity() -> None:
    # Prepare: the health-care contract (6 rows per resident) with evaluation; one resident whose 6 rows sit at the
    # corners of the encoded box (the segment one-hot), all in one bin, at p = 1/2 where p(1-p)·x is largest
    from federation.privacy import plan_study
    from federation.spec import parse_spec
    from schemas import ContractCatalog

    spec = parse_spec({"study_id": "b", "task": "dp_logreg", "contract": "health_care", "datasets": ["a/health_care"],
                       "privacy": {"epsilon": 1.0, "delta": 1e-6},
                       "model": {"outcome": "service_status", "positive": ["intensive"], "evaluate": True,
                                 "features": ["health_segment", "hospital_days", "specialist_visits"],
                                 "categorical": ["health_segment"]}})
    plan = plan_study(spec, ContractCatalog().get("health_care"))
    assert plan.model is not None and plan.model.evaluation is not None
    e = plan.model.evaluation
    width = len(plan.model.features)
    x = np.zeros((6, width))
    x[:, 0] = 1.0                     # one segment level
    x[:, -3:] = 1.0                   # both numbers at the top of their range, and the intercept
    params = np.zeros((1, width))     # logit 0: p = 1/2, every row in one bin
    design = Design(x=x, y=np.ones(6, dtype=np.int64), resident=np.zeros(6, dtype=np.int64), residents=1)
    # Execute
    histogram, _ = evaluation_statistics(design, params, e.bins, e.prediction_weight, e.curvature_weight)
    # Assert: the curvature rows are there, and the whole release moves by no more than its planned sensitivity
    # (tight: this resident reaches 6 x sqrt(1 + (0.5 x 1/2)^2 + 0.5^2))
    assert histogram.shape == (3 + width, e.bins)
    assert float(np.linalg.norm(histogram)) <= e.histogram_sensitivity
    assert float(np.linalg.norm(histogram)) == pytest.approx(6 * math.sqrt(1 + 0.25 ** 2 + 0.5 ** 2))


def test_newton_without_noise_reaches_the_maximum_likelihood_fit_in_a_few_rounds() -> None:
    # Prepare: a rare outcome (the hard case for Newton from zero) and scikit-learn's fit with the same ridge
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(8)
    x = np.column_stack([rng.random((20_000, 3)), np.ones(20_000)])
    truth = np.array([[2.0, -1.0, 0.5, -4.0]])
    y = (rng.random(20_000) < predict_proba(truth, x)[:, 1]).astype(np.int64)
    design = Design(x=x, y=y, resident=np.arange(20_000), residents=20_000)
    reference = LogisticRegression(C=1.0, fit_intercept=False, tol=1e-10, max_iter=1000).fit(x, y).coef_
    solver = NewtonSolver((1, 4), gradient_noise=0.0, hessian_noise=0.0)
    params = np.zeros((1, 4))
    # Execute: the rounds and curvature schedule of a 10-round study, exact statistics
    for round_ in range(1, 11):
        gradient, hessian, trace = newton_statistics(design, params, 1e9, round_ in newton_hessian_rounds(10))
        if hessian is not None:
            solver.update_curvature(upper_triangle(hessian), 1)
        params = solver.step(params, gradient, 1, trace)
    # Assert: the mean of the last half of the iterates is scikit-learn's fit
    assert np.allclose(solver.estimate(), reference, atol=2e-3), (solver.estimate(), reference)


def test_an_integer_feature_taken_as_categories_is_one_hot_and_a_missing_or_unknown_level_in_none(
        registry: ContractCatalog) -> None:
    # Prepare: segments 1 and 20 (the contract's range ends), a missing one and one outside the range
    from federation.privacy import plan_study
    from federation.tasks import encode
    from federation.templates import build_spec

    spec = build_spec("logistic_regression", "m-1", "2024",
                      {"contract": "health_care", "municipalities": ["espoo"], "outcome": "service_status",
                       "positive": ["home_care"], "features": ["health_segment", "hospital_days"],
                       "categorical": ["health_segment"]}, registry)
    plan = plan_study(spec, registry)
    frame = pd.DataFrame({"health_segment": pd.array([1, 20, None, 25], dtype="Int64"),
                          "hospital_days": [0, 60, 120, 240], "service_status": ["none", "home_care", "none", "none"]})
    assert spec.model is not None and plan.model is not None
    # Execute
    design = encode(frame, pd.Series(["a", "b", "c", "d"]), spec.model, registry.get("health_care"), plan.model)
    # Assert: 20 level columns, the scaled number (warn_range 0-120, clipped), the intercept
    assert design.x.shape == (4, 22)
    assert design.x[0, 0] == 1 and design.x[1, 19] == 1 and design.x[:2, :20].sum() == 2
    assert design.x[2:, :20].sum() == 0
    assert list(design.x[:, 20]) == [0.0, 0.5, 1.0, 1.0] and list(design.x[:, 21]) == [1.0] * 4
    assert list(design.y) == [0, 1, 0, 0]
