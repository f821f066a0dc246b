"""The node agent without Flower: what a node refuses, what it charges, what it releases."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.errors import RefusalCode, StudyRefused
from federation.signing import SigningKey, public_key_pem, sign_spec
from federation.spec import StudySpec, parse_spec
from nodes.agent import NodeAgent
from nodes.config import load_node_config, write_node_config
from nodes.extract import file_sha256
from tests.conftest import Municipality
from tillit.local import NodeSetup, node_config

DATASET = "espoo/health_care"
#: the coordinator's signing key, as far as these nodes know
_KEY = SigningKey(Ed25519PrivateKey.generate())


def _agent(tmp_path: Path, municipality: Municipality, epsilon_cap: float = 3.0) -> NodeAgent:
    data = tmp_path / "health_care.parquet"
    shutil.copy(municipality.silo("health_care"), data)
    (tmp_path / "coordinator.pub").write_bytes(public_key_pem(_KEY.public))
    setup = NodeSetup(DATASET, "health_care", data, epsilon_cap)
    path = write_node_config(tmp_path / "node" / "node.toml", node_config(
        setup, tmp_path / "node", "127.0.0.1:1", None, 9999, tmp_path / "coordinator.pub", insecure=True))
    agent = NodeAgent(load_node_config(path))
    agent.initialise()
    return agent


def _spec(study_id: str = "s1", epsilon: float = 1.0, **extra: object) -> StudySpec:
    document: dict[str, object] = {
        "study_id": study_id, "task": "dp_logreg", "contract": "health_care", "datasets": [DATASET],
        "privacy": {"epsilon": epsilon, "delta": 1e-6},
        "model": {"outcome": "service_status", "positive": ["home_care", "intensive"],
                  "features": ["health_segment", "hospital_days"], "rounds": 2, "local_steps": 2},
    }
    return _signed(document | extra)


def _signed(document: dict[str, object]) -> StudySpec:
    return sign_spec(parse_spec(document), _KEY)


def test_a_study_that_does_not_name_the_node_is_not_for_it(tmp_path: Path, municipality: Municipality) -> None:
    agent = _agent(tmp_path, municipality)
    with pytest.raises(StudyRefused) as refused:
        agent.prepare(_spec(datasets=["vantaa/health_care"]))
    assert refused.value.reason_code == RefusalCode.NOT_PARTICIPATING


def test_budget_is_charged_once_and_exhaustion_refuses_naming_node_and_budget(
        tmp_path: Path, municipality: Municipality) -> None:
    # Prepare: a local cap that fits one study at epsilon 1 but not two (two compose to about 1.45 in zCDP)
    agent = _agent(tmp_path, municipality, epsilon_cap=1.2)
    spec = _spec()
    params = np.zeros((1, 3))
    # Execute
    first, count = agent.train_round(spec, params, 1)
    second, _ = agent.train_round(spec, first, 2)
    # Assert
    assert len(agent.ledger.charges()) == 1
    assert not np.array_equal(first, params) and not np.array_equal(first, second)
    with pytest.raises(StudyRefused) as refused:
        agent.prepare(_spec("s2"))
    assert refused.value.reason_code == RefusalCode.BUDGET_EXCEEDED
    assert DATASET in refused.value.message and "local budget" in refused.value.message
    assert len(agent.ledger.charges()) == 1


def test_extra_or_repeated_rounds_are_refused(tmp_path: Path, municipality: Municipality) -> None:
    agent = _agent(tmp_path, municipality)
    spec = _spec()
    agent.train_round(spec, np.zeros((1, 3)), 1)
    for round_ in (1, 3):
        with pytest.raises(StudyRefused) as refused:
            agent.train_round(spec, np.zeros((1, 3)), round_)
        assert refused.value.reason_code == RefusalCode.ALREADY_RELEASED


def test_a_changed_extract_is_revalidated_and_a_broken_one_refused(tmp_path: Path, municipality: Municipality) -> None:
    # Prepare: the node checked its extract; then someone overwrites it with a broken one
    agent = _agent(tmp_path, municipality)
    first = agent.ensure_valid()
    broken = pd.read_parquet(agent.config.node.data).drop(columns=["service_status"])
    broken.to_parquet(agent.config.node.data, index=False)
    # Execute / Assert
    with pytest.raises(StudyRefused) as refused:
        agent.prepare(_spec())
    assert refused.value.reason_code == RefusalCode.CONTRACT_BROKEN
    assert agent.ledger.charges() == []
    recorded = json.loads(agent.config.validation_path.read_text())
    assert recorded["verdict"] == "fail"
    assert recorded["data"]["sha256"] == file_sha256(agent.config.node.data) != first


def test_tables_release_noisy_counts_of_the_right_shape(tmp_path: Path, municipality: Municipality) -> None:
    agent = _agent(tmp_path, municipality)
    spec = _signed({"study_id": "t1", "task": "dp_table", "contract": "health_care", "datasets": [DATASET],
                    "privacy": {"epsilon": 1.0, "delta": 1e-6}, "table": {"group_by": ["service_status"]}})
    counts = agent.table(spec)
    exact = pd.read_parquet(agent.config.node.data)["service_status"].value_counts()
    assert counts.shape == (4,)
    assert abs(counts[0] - exact["none"]) < 200          # noise sd ~ 14 at epsilon 1 with 6 rows/resident
    assert counts[0] != exact["none"]
    with pytest.raises(StudyRefused, match="already released"):
        agent.table(spec)


def test_multinomial_model_learns_the_class_shares(tmp_path: Path, municipality: Municipality) -> None:
    # Prepare: four service statuses, "none" as the reference class; a generous budget for a clear signal and a
    # clipping norm near the contract's 6 rows per resident (a smaller one biases the fit towards "none")
    from federation.tasks import predict_proba

    agent = _agent(tmp_path, municipality, epsilon_cap=50.0)
    spec = _signed({
        "study_id": "multi", "task": "dp_logreg", "contract": "health_care", "datasets": [DATASET],
        "privacy": {"epsilon": 10.0, "delta": 1e-6},
        "model": {"outcome": "service_status", "features": ["health_segment"], "rounds": 8, "local_steps": 25,
                  "learning_rate": 2.0, "clipping_norm": 6.0}})
    params = np.zeros((3, 2))
    # Execute
    for round_ in range(1, 9):
        params, _ = agent.train_round(spec, params, round_)
    # Assert: one row per non-reference class, and the model's class shares over the data match the observed ones
    assert params.shape == (3, 2)
    data = pd.read_parquet(agent.config.node.data).dropna(subset=["health_segment"])
    x = np.column_stack([(data["health_segment"] - 1) / 19, np.ones(len(data))])
    predicted = predict_proba(params, x).mean(axis=0)
    observed = data["service_status"].value_counts(normalize=True)
    for i, status in enumerate(["none", "preventive", "home_care", "intensive"]):
        assert abs(predicted[i] - observed.get(status, 0.0)) < 0.05, (status, predicted, observed)


def test_unsigned_altered_or_foreign_specs_are_refused_before_any_charge(
        tmp_path: Path, municipality: Municipality) -> None:
    # Prepare: one spec without a signature, one altered after signing, one signed by another key
    agent = _agent(tmp_path, municipality)
    signed = _spec()
    unsigned = signed.model_copy(update={"signature": None})
    altered = signed.model_copy(update={"privacy": signed.privacy.model_copy(update={"epsilon": 0.5})})
    foreign = sign_spec(unsigned, SigningKey(Ed25519PrivateKey.generate()))
    # Execute / Assert: each is refused with code 4303, naming the node; nothing is charged
    for spec, words in ((unsigned, "not signed"), (altered, "altered"), (foreign, "another key")):
        with pytest.raises(StudyRefused, match=words) as refused:
            agent.train_round(spec, np.zeros((1, 3)), 1)
        assert refused.value.reason_code == RefusalCode.NOT_SIGNED and DATASET in refused.value.message
    assert agent.ledger.charges() == []
    agent.prepare(signed)   # the untouched signed spec is accepted


def test_evaluation_releases_noisy_histograms_and_fisher_once_after_training(
        tmp_path: Path, municipality: Municipality) -> None:
    # Prepare: a binary model that asks for private evaluation
    agent = _agent(tmp_path, municipality)
    spec = _signed({"study_id": "ev", "task": "dp_logreg", "contract": "health_care", "datasets": [DATASET],
                    "privacy": {"epsilon": 1.0, "delta": 1e-6},
                    "model": {"outcome": "service_status", "positive": ["home_care", "intensive"],
                              "features": ["health_segment"], "rounds": 1, "local_steps": 2, "evaluate": True}})
    params, _ = agent.train_round(spec, np.zeros((1, 2)), 1)
    # Execute
    histogram, fisher = agent.evaluate(spec, params)
    # Assert: 50 bins of counts per outcome (adding up to about the rows), of predicted probabilities and of
    # p(1-p)·x per encoded feature (2); a 2 x 2 information matrix; once only; one charge
    rows = len(pd.read_parquet(agent.config.node.data).dropna(subset=["health_segment"]))
    assert histogram.shape == (5, 50) and fisher.shape == (2, 2)
    assert abs(histogram[:2].sum() - rows) < 0.05 * rows
    with pytest.raises(StudyRefused, match="already released"):
        agent.evaluate(spec, params)
    assert len(agent.ledger.charges()) == 1


def test_a_warm_node_trains_on_the_extract_as_it_is_now_not_on_its_cached_design(
        tmp_path: Path, municipality: Municipality) -> None:
    # Prepare: a study trains (the node keeps its encoded design); then the extract is replaced by a
    # valid one holding only half of the residents
    agent = _agent(tmp_path, municipality)
    _, before = agent.train_round(_spec("s1"), np.zeros((1, 3)), 1)
    frame = pd.read_parquet(agent.config.node.data)
    kept = frame["person_id"].drop_duplicates().iloc[::2]
    frame[frame["person_id"].isin(kept)].to_parquet(agent.config.node.data, index=False)
    # Execute
    _, after = NodeAgent(agent.config).train_round(_spec("s2"), np.zeros((1, 3)), 1)
    # Assert: the noisy resident count follows the new extract (noise sd is a few residents)
    assert after == pytest.approx(before / 2, rel=0.1)


def test_a_newton_round_releases_noisy_gradients_each_round_and_curvature_only_in_its_rounds(
        tmp_path: Path, municipality: Municipality) -> None:
    # Prepare: a Newton study (the default) of 6 rounds: curvature in rounds 1 and 3
    agent = _agent(tmp_path, municipality)
    spec = _signed({"study_id": "nw", "task": "dp_logreg", "contract": "health_care", "datasets": [DATASET],
                    "privacy": {"epsilon": 1.0, "delta": 1e-6},
                    "model": {"outcome": "service_status", "positive": ["home_care", "intensive"],
                              "features": ["health_segment", "hospital_days"], "rounds": 6, "evaluate": True}})
    params = np.zeros((1, 3))
    # Execute
    released = [agent.newton_round(spec, params, round_) for round_ in range(1, 7)]
    histogram, fisher = agent.evaluate(spec, params)
    # Assert: a gradient and a trace every round, the 6 entries of the 3x3 curvature in rounds 1 and 3 only;
    # histograms with a p(1-p)·x row per encoded feature; no Fisher information (Newton has its curvature);
    # one charge; no round twice, none past the last
    assert [g.shape for g, _, _ in released] == [(1, 3)] * 6
    assert [h.shape for _, h, _ in released] == [(6,), (0,), (6,), (0,), (0,), (0,)]
    assert all(t.shape == (1,) and t[0] > 0 for _, _, t in released)
    assert histogram.shape == (3 + 3, 50) and fisher.shape == (0, 0)
    assert len(agent.ledger.charges()) == 1
    for round_ in (3, 7):
        with pytest.raises(StudyRefused) as refused:
            agent.newton_round(spec, params, round_)
        assert refused.value.reason_code == RefusalCode.ALREADY_RELEASED
    with pytest.raises(StudyRefused) as refused:   # a Newton study is never trained by gradient descent
        agent.train_round(spec, params, 1)
    assert refused.value.reason_code == RefusalCode.MALFORMED_SPEC


def test_multinomial_newton_learns_the_class_shares(tmp_path: Path, municipality: Municipality) -> None:
    # Prepare: the multinomial model of the gradient-descent test above, at Newton's defaults and epsilon 1
    from federation.privacy import plan_study
    from federation.tasks import NewtonSolver, predict_proba

    agent = _agent(tmp_path, municipality)
    spec = _signed({"study_id": "multi-newton", "task": "dp_logreg", "contract": "health_care",
                    "datasets": [DATASET], "privacy": {"epsilon": 1.0, "delta": 1e-6},
                    "model": {"outcome": "service_status", "features": ["health_segment"]}})
    model = plan_study(spec, agent.catalog).model
    assert model is not None
    solver = NewtonSolver((3, 2), model.noise_scale, model.hessian_noise_scale)
    params = np.zeros((3, 2))
    # Execute: the server's side of each round, as the ServerApp does it
    for round_ in range(1, model.rounds + 1):
        gradient, hessian, trace = agent.newton_round(spec, params, round_)
        if hessian.size:
            solver.update_curvature(hessian, 1)
        params = solver.step(params, gradient, 1, float(trace[0]))
    # Assert: the model's class shares over the data match the observed ones
    data = pd.read_parquet(agent.config.node.data).dropna(subset=["health_segment"])
    x = np.column_stack([(data["health_segment"] - 1) / 19, np.ones(len(data))])
    predicted = predict_proba(solver.estimate(), x).mean(axis=0)
    observed = data["service_status"].value_counts(normalize=True)
    for i, status in enumerate(["none", "preventive", "home_care", "intensive"]):
        assert abs(predicted[i] - observed.get(status, 0.0)) < 0.05, (status, predicted, observed)
