"""The demo's care-needs model, evaluated privately: over many noise draws its AUC and calibration are unbiased
and their intervals cover the exact values, every calibration bin at once; and the DP-trained model reads as
calibrated within its intervals, every bin at once, about as often as they promise.

The model is fitted as the demo fits it (the ``logistic_regression`` template at its defaults, Newton, ε = 1) on a
300,000-resident municipality, in-process with the functions the node and the ServerApp use — several times, each
with its own training noise; then the nodes' exact score histograms are released again and again with OpenDP's
noise at the plan's scale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from federation.evaluation import LOGIT_RANGE
from federation.privacy import gaussian_release, plan_study
from federation.results import private_evaluation
from federation.tasks import encode, evaluation_statistics, newton_fit_in_process
from federation.templates import build_spec
from nodes.agent import RESIDENT, typed_extract
from nodes.secret import ephemeral_secret
from schemas import ContractCatalog
from schemas.synth import SynthConfig, synthesize

pytestmark = pytest.mark.integration

DRAWS = 200
#: DP trainings of the model, each evaluated DRAWS // TRAININGS times
TRAININGS = 10


def test_the_care_needs_models_private_evaluation_is_unbiased_and_reads_the_dp_model_calibrated(tmp_path: Path) -> None:
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
    e = model.evaluation
    trainings = [newton_fit_in_process(design, model) for _ in range(TRAININGS)]
    noise_free = newton_fit_in_process(design, model, noisy=False).estimate()
    estimate = trainings[0].estimate()
    exact_auc = roc_auc_score(design.y, design.x @ estimate[0])
    histogram, _ = evaluation_statistics(design, estimate, e.bins, e.prediction_weight, e.curvature_weight)
    histogram_free, _ = evaluation_statistics(design, noise_free, e.bins, e.prediction_weight, e.curvature_weight)
    edges = np.linspace(*LOGIT_RANGE, e.bins + 1)
    # Execute: the evaluation release, DRAWS times for the first training, DRAWS // TRAININGS for each training
    aucs, auc_covered, errors, all_bins_covered, calibrated_free = [], [], [], [], []
    for _ in range(DRAWS):
        noisy = gaussian_release(histogram, e.histogram_noise_scale)
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
        free = private_evaluation(plan, gaussian_release(histogram_free, e.histogram_noise_scale), 1)
        calibrated_free.append(free["evaluation"]["calibrated_within_intervals"])
    calibrated, calibrated_without_training_noise = [], []
    for solver in trainings:
        covariance = solver.covariance()[1]   # the DP noise training left in the parameters, as the ServerApp has it
        exact_histogram, _ = evaluation_statistics(design, solver.estimate(), e.bins, e.prediction_weight, e.curvature_weight)
        for _ in range(DRAWS // TRAININGS):
            noisy = gaussian_release(exact_histogram, e.histogram_noise_scale)
            calibrated.append(private_evaluation(plan, noisy, 1, covariance)["evaluation"]["calibrated_within_intervals"])
            calibrated_without_training_noise.append(
                private_evaluation(plan, noisy, 1)["evaluation"]["calibrated_within_intervals"])
    # Assert: the AUC is unbiased to 0.005 and its interval covers the exact AUC; every calibration bin's
    # observed rate is unbiased and, all bins at once, within its interval ~95 % of the time. A model of the
    # right shape fitted without noise reads as calibrated (predicted rates within every bin's calibration
    # interval at once) about as often as the intervals promise, 95 %: 0.935-0.975 over runs. The DP-trained
    # models do too once the intervals include the training noise in their parameters: 0.946 over 12 trainings x
    # 40 draws, 0.856 without it. Trainings differ (one of the 12 read 0.70 with it, 0.075 without), so the
    # bound is set for the mean of 10.
    assert abs(np.mean(aucs) - exact_auc) < 0.005, (np.mean(aucs), exact_auc)
    assert np.mean(auc_covered) >= 0.9
    assert abs(np.mean(errors)) < 0.005
    assert np.mean(all_bins_covered) >= 0.9, np.mean(all_bins_covered)
    assert np.mean(calibrated_free) >= 0.85, np.mean(calibrated_free)
    assert np.mean(calibrated) >= 0.85, (np.mean(calibrated), np.mean(calibrated_without_training_noise))
