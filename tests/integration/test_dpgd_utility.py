"""Utility of DP-GD: at epsilon 1 per dataset it matches a non-private pooled logistic regression.

The federated algorithm is run in-process with the same functions the nodes and the ServerApp use
(encode, local_training with OpenDP noise, weighting by noisy counts): the transport does not change
what is learned, and 300,000 residents through real processes would take minutes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from federation.privacy import gaussian_release, plan_study
from federation.spec import parse_spec
from federation.tasks import encode, local_training, predict_proba
from nodes.agent import RESIDENT, typed_extract
from nodes.secret import ephemeral_secret
from schemas import ContractCatalog
from schemas.synth import SynthConfig, synthesize

pytestmark = pytest.mark.integration

MUNICIPALITIES = ("espoo", "vantaa", "helsinki")


def test_dpgd_at_epsilon_1_is_within_002_auc_of_pooled_logistic_regression(tmp_path: Path) -> None:
    # Prepare: 300,000 residents in three municipalities' health-care silos
    synthesize(SynthConfig(out=tmp_path, residents=100_000, municipalities=MUNICIPALITIES, seed=4))
    contract = ContractCatalog().get("health_care")
    spec = parse_spec({
        "study_id": "utility", "task": "dp_logreg", "contract": "health_care",
        "datasets": [f"{m}/health_care" for m in MUNICIPALITIES], "privacy": {"epsilon": 1.0, "delta": 1e-6},
        "model": {"outcome": "service_status", "positive": ["home_care", "intensive"],
                  "features": ["health_segment", "primary_care_visits", "specialist_visits", "hospital_days"],
                  "rounds": 10, "local_steps": 5, "learning_rate": 5.0}})
    plan = plan_study(spec, contract)
    assert plan.model is not None and spec.model is not None and plan.epsilon <= 1.0
    designs = []
    for municipality in MUNICIPALITIES:   # what each node does: its own typed, bounded extract, then encoding
        frame = typed_extract(tmp_path / municipality / "health_care.parquet", contract,
                              ephemeral_secret().pseudonym_key)
        designs.append(encode(frame, frame[RESIDENT], spec.model, contract, plan.model))
    # Execute: rounds of local noisy steps, averaged with weights from noisy counts
    counts = [float(gaussian_release(np.array([float(d.residents)]), plan.model.count_noise_scale)[0]) for d in designs]
    params = np.zeros((1, len(plan.model.features)))
    for _ in range(spec.model.rounds):
        updates = [local_training(d, params, spec.model, plan.model, n) for d, n in zip(designs, counts)]
        params = np.sum([n / sum(counts) * u for n, u in zip(counts, updates)], axis=0)
    # Assert
    x = np.vstack([d.x for d in designs])
    y = np.concatenate([d.y for d in designs])
    assert sum(d.residents for d in designs) == 300_000
    pooled = LogisticRegression(C=1e6, max_iter=2000, fit_intercept=False).fit(x, y)
    auc_pooled = roc_auc_score(y, pooled.predict_proba(x)[:, 1])
    auc_private = roc_auc_score(y, predict_proba(params, x)[:, 1])
    assert auc_pooled - auc_private <= 0.02, (auc_private, auc_pooled)
