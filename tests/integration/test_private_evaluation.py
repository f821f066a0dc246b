"""The demo's care-needs model, evaluated privately: over many noise draws its AUC and calibration are unbiased
and their intervals cover the exact values, every calibration bin at once.

The model is fitted as the demo fits it (the ``logistic_regression`` template at its defaults, Newton, ε = 1) on a
300,000-resident municipality, in-process with the functions the node and the ServerApp use; then the nodes'
exact score histograms are released again and again with OpenDP's noise at the plan's scale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from federation.evaluation import LOGIT_RANGE
from federation.privacy import ModelPlan, gaussian_release, plan_study
from federation.results import private_evaluation
from federation.tasks import (
    Design, NewtonSolver, encode, evaluation_statistics, feature_columns, newton_statistics, upper_triangle,
)
from federation.templates import build_spec
from nodes.agent import RESIDENT, typed_extract
from nodes.secret import ephemeral_secret
from schemas import ContractCatalog
from schemas.synth import SynthConfig, synthesize

pytestmark = pytest.mark.integration

DRAWS = 200


def test_the_care_needs_models_private_auc_and_calibration_are_unbiased_and_covered(tmp_path: Path) -> None:
    # Prepare: the demo's municipality and its care-needs study; the model fitted as the federation fits it
    synthesize(SynthConfig(out=tmp_path, residents=300_000, municipalities=("espoo",), seed=7))
    registry = ContractCatalog()
    spec = build_spec("logistic_regression", "care-needs-model-2024", "2024",
                      {"contract": "health_care", "municipalities": ["espoo"], "epsilon": 1.0,
                       "outcome": "service_status", "positive": ["home_care", "intensive"],
                       "features": ["health_segment", "hospital_days", "specialist_visits", "primary_care_visits"],
                       "categorical": ["health_segment"]},
                      registry)
    plan = plan_study(spec, registry)
    model = plan.model
    assert spec.model is not None and model is not None and model.evaluation is not None
    contract = registry.get("health_care")
    frame = typed_extract(tmp_path / "espoo" / "health_care.parquet", contract, ephemeral_secret().pseudonym_key)
    design = encode(frame, frame[RESIDENT], spec.model, contract, model)
    estimate = _fit(design, model, noisy=True)
    noise_free = _fit(design, model, noisy=False)
    exact_auc = roc_auc_score(design.y, design.x @ estimate[0])
    histogram, _ = evaluation_statistics(design, estimate, model.evaluation.bins, model.evaluation.prediction_weight)
    histogram_free, _ = evaluation_statistics(design, noise_free, model.evaluation.bins,
                                              model.evaluation.prediction_weight)
    edges = np.linspace(*LOGIT_RANGE, model.evaluation.bins + 1)
    # Execute: the evaluation release, DRAWS times
    aucs, auc_covered, errors, all_bins_covered, calibrated_free = [], [], [], [], []
    for _ in range(DRAWS):
        noisy = gaussian_release(histogram, model.evaluation.histogram_noise_scale)
        evaluation = private_evaluation(plan, noisy, 1)["evaluation"]
        aucs.append(evaluation["auc"])
        auc_covered.append(evaluation["auc_interval"][0] <= exact_auc <= evaluation["auc_interval"][1])
        covered = True
        for group in evaluation["calibration"]:
            lo, hi = (int(np.argmin(abs(edges - v))) for v in group["logit_range"])
            exact = histogram[1, lo:hi].sum() / histogram[:2, lo:hi].sum()
            errors.append(group["observed"] - exact)
            covered &= group["interval"][0] <= exact <= group["interval"][1]
        all_bins_covered.append(covered)
        free = private_evaluation(plan, gaussian_release(histogram_free, model.evaluation.histogram_noise_scale), 1)
        calibrated_free.append(free["evaluation"]["calibrated_within_intervals"])
    # Assert: the AUC is unbiased to 0.005 and its interval covers the exact AUC; every calibration bin's
    # observed rate is unbiased and, all bins at once, within its interval ~95 % of the time. And a model of the
    # right shape reads as calibrated — its predicted rates within every bin's calibration interval at once — about
    # as often as the intervals promise (95 %): the same model fitted without noise, 0.935-0.975 over runs. (The
    # DP-trained model itself read calibrated in 0.72-0.94 of draws over four trainings: the intervals cover the
    # evaluation's noise and sampling, not the training noise in its parameters. Not asserted: it depends on
    # one training draw.)
    assert abs(np.mean(aucs) - exact_auc) < 0.005, (np.mean(aucs), exact_auc)
    assert np.mean(auc_covered) >= 0.9
    assert abs(np.mean(errors)) < 0.005
    assert np.mean(all_bins_covered) >= 0.9, np.mean(all_bins_covered)
    assert np.mean(calibrated_free) >= 0.85, np.mean(calibrated_free)


def _fit(design: Design, model: ModelPlan, noisy: bool) -> np.ndarray:
    """The Newton fit as the federation runs it (one node): with the plan's noise, or without any."""
    def release(values: np.ndarray, scale: float) -> np.ndarray:
        return gaussian_release(values, scale) if noisy else values

    solver = NewtonSolver((1, len(model.features)), model.noise_scale,
                          model.hessian_noise_scale if noisy else 0.0, feature_columns(model.features))
    params = np.zeros((1, len(model.features)))
    for round_ in range(1, model.rounds + 1):
        gradient, hessian, trace = newton_statistics(design, params, model.clipping_norm, round_ in model.hessian_rounds)
        if hessian is not None:
            solver.update_curvature(release(upper_triangle(hessian), model.hessian_noise_scale), 1)
        params = solver.step(params, release(gradient, model.noise_scale), 1,
                             float(release(np.array([trace]), model.trace_noise_scale)[0]))
    return solver.estimate()
