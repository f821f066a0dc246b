"""Task computations on tiny frames: transitions, cell counts, per-resident clipping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from federation.privacy import TablePlan
from federation.spec import TransitionSpec
from federation.tasks import cell_counts, transition_rows
from federation.tasks.logreg import Design, _clipped_gradient_sum, predict_proba


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
