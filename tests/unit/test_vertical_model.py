"""The adjusted model from released sufficient statistics: exact least squares without noise, the stated logistic
step, intervals whose noise part matches simulated releases, and no model where a noisy XᵀX does not determine
one; its
evaluation from the same counts: the binormal AUC, the exact Brier score, calibration in the large."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest

from federation.vertical.model import adjusted_model, evaluate, logistic_normal_mean, statistics_from


def _cohort(seed: int = 3, n: int = 40_000, k: int = 6) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=n)
    x = (rng.random((n, k)) < 1 / (1 + np.exp(-(-2.2 + 0.6 * latent[:, None])))).astype(float)
    beta = np.array([0.9, 0.5, 0.0, -0.4, 0.7, 0.0])[:k]
    y = (rng.random(n) < 1 / (1 + np.exp(-(-3.3 + x @ beta)))).astype(float)
    return x, y, [f"f{j}" for j in range(k)]


def _released(x: np.ndarray, y: np.ndarray, names: list[str], sd: float = 0.0,
              rng: np.random.Generator | None = None) -> SimpleNamespace:
    def noisy(value: float) -> tuple[float, float]:
        return (value + (rng.normal(0, sd) if rng is not None and sd else 0.0), sd)

    return SimpleNamespace(
        cohort_size=noisy(len(y)), cases=noisy(y.sum()),
        exposed={f: noisy(x[:, j].sum()) for j, f in enumerate(names)},
        exposed_cases={f: noisy(x[:, j] @ y) for j, f in enumerate(names)},
        both={tuple(sorted((names[i], names[j]))): noisy(x[:, i] @ x[:, j])
              for i, j in itertools.combinations(range(len(names)), 2)},
        both_cases={tuple(sorted((names[i], names[j]))): noisy(x[:, i] * x[:, j] @ y)
                    for i, j in itertools.combinations(range(len(names)), 2)})


def test_without_noise_the_linear_model_is_least_squares_and_the_step_is_as_stated() -> None:
    # Prepare
    x, y, names = _cohort()
    stats = statistics_from(_released(x, y, names), names)
    assert stats is not None
    # Execute
    model = adjusted_model(stats)
    # Assert
    design = np.column_stack([np.ones(len(y)), x])
    exact = np.linalg.lstsq(design, y, rcond=None)[0]
    found = {r["factor"]: r for r in model["factors"]}
    np.testing.assert_allclose([found[f]["risk_difference"]["estimate"] for f in names], exact[1:], rtol=1e-9)
    rate = y.mean()
    step = exact[1:] / (rate * (1 - rate))
    np.testing.assert_allclose([found[f]["log_odds"]["estimate"] for f in names], step, rtol=1e-9)
    assert [r["rank"] for r in model["factors"]] == list(range(1, len(names) + 1))
    assert model["factors"][0]["factor"] == "f0"          # the strongest true effect ranks first


def test_the_noise_part_of_the_interval_matches_simulated_releases() -> None:
    # Prepare: the same cohort released 600 times with noise sd 60 on every count
    x, y, names = _cohort()
    rng = np.random.default_rng(11)
    stats = statistics_from(_released(x, y, names, sd=60.0), names)
    assert stats is not None
    model = adjusted_model(stats)
    predicted = {r["factor"]: r["log_odds"]["se"] ** 2 * r["noise_share"] for r in model["factors"]}
    # Execute
    draws = []
    for _ in range(600):
        again = statistics_from(_released(x, y, names, sd=60.0, rng=rng), names)
        assert again is not None
        draws.append({r["factor"]: r["log_odds"]["estimate"] for r in adjusted_model(again)["factors"]})
    # Assert: the delta-method noise variance within 25 % of the simulated one, for every factor
    for f in names:
        simulated = np.var([d[f] for d in draws])
        assert 0.75 < predicted[f] / simulated < 1.33, (f, predicted[f], simulated)


def test_a_noisy_xtx_that_is_not_positive_definite_gives_no_model_and_no_evaluation_but_why() -> None:
    # Prepare: a pair count pushed far above its factors' exposed counts, as noise does in a small town
    x, y, names = _cohort(k=3)
    released = _released(x, y, names)
    released.both[("f1", "f2")] = (released.both[("f1", "f2")][0] + 5_000, 0.0)
    stats = statistics_from(released, names)
    assert stats is not None
    # Execute
    model, evaluation = adjusted_model(stats), evaluate(stats)
    # Assert: the why names how many directions, and nothing numeric is given
    assert set(model) == {"unavailable"} and set(evaluation) == {"unavailable"}
    assert "1 of the 4 directions of the model's XᵀX came out at or below zero" in model["unavailable"]
    assert evaluation["unavailable"] == model["unavailable"]


def test_the_same_counts_without_the_push_give_a_model() -> None:
    # Prepare: the counterpart of the test above, so that it cannot pass for a model that is never given
    x, y, names = _cohort(k=3)
    stats = statistics_from(_released(x, y, names), names)
    assert stats is not None
    # Execute
    model = adjusted_model(stats)
    # Assert
    assert "unavailable" not in model and len(model["factors"]) == 3


def test_without_every_pair_among_the_factors_there_is_no_model() -> None:
    x, y, names = _cohort(k=3)
    released = _released(x, y, names)
    del released.both[("f0", "f2")]
    assert statistics_from(released, names) is None


def _linear_scores(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    design = np.column_stack([np.ones(len(y)), x])
    return design, design @ np.linalg.lstsq(design, y, rcond=None)[0]


def test_without_noise_the_evaluation_is_the_pooled_scores_binormal_auc_and_exact_brier() -> None:
    # Prepare
    x, y, names = _cohort(k=6)
    stats = statistics_from(_released(x, y, names), names)
    assert stats is not None
    design, score = _linear_scores(x, y)
    # Execute
    found = evaluate(stats)
    # Assert: the binormal AUC of the pooled rows' own scores (same formula, row by row) ...
    cases, others = score[y == 1], score[y == 0]
    binormal = 0.5 * (1 + math.erf((cases.mean() - others.mean()) / math.sqrt(2 * (cases.var() + others.var()))))
    assert math.isclose(found["auc"]["estimate"], binormal, rel_tol=1e-9)
    # ... which is near the exact AUC (Mann-Whitney over every case/other pair; the approximation, stated)
    ranks = np.argsort(np.argsort(score, kind="stable"), kind="stable") + 1.0
    exact = (ranks[y == 1].sum() - len(cases) * (len(cases) + 1) / 2) / (len(cases) * len(others))
    assert abs(found["auc"]["estimate"] - exact) < 0.02, (found["auc"]["estimate"], exact)
    assert math.isclose(found["brier"]["estimate"], float(np.mean((y - score) ** 2)), rel_tol=1e-9)
    assert found["auc"]["noise_share"] == 0.0 and found["brier"]["noise_sd"] == 0.0


def test_calibration_in_the_large_shows_the_logistic_steps_overstatement() -> None:
    # Prepare
    x, y, names = _cohort(k=6)
    stats = statistics_from(_released(x, y, names), names)
    assert stats is not None
    model = adjusted_model(stats)
    found = {r["factor"]: r["log_odds"]["estimate"] for r in model["factors"]}
    step = np.array([model["intercept"]["log_odds"], *(found[f] for f in names)])
    design, _ = _linear_scores(x, y)
    # Execute
    calibration = evaluate(stats)["calibration_in_the_large"]
    # Assert: the normal approximation of the step's mean risk is near the pooled rows' own mean risk, and both
    # say the step predicts more cases than there are (it overstates the odds ratios)
    pooled = float(np.mean(1 / (1 + np.exp(-(design @ step)))))
    assert abs(calibration["mean_predicted_risk"] - pooled) < 0.15 * pooled, (calibration, pooled)
    assert calibration["observed_rate"] == y.mean()
    assert calibration["ratio"] > 1.05 and pooled > 1.05 * y.mean()


def test_the_noise_part_of_the_auc_interval_matches_simulated_releases() -> None:
    # Prepare
    x, y, names = _cohort()
    rng = np.random.default_rng(5)
    stats = statistics_from(_released(x, y, names, sd=60.0), names)
    assert stats is not None
    auc = evaluate(stats)["auc"]
    predicted = auc["se"] ** 2 * auc["noise_share"]
    # Execute
    draws = []
    for _ in range(400):
        again = statistics_from(_released(x, y, names, sd=60.0, rng=rng), names)
        assert again is not None
        draws.append(evaluate(again)["auc"]["estimate"])
    # Assert
    assert 0.75 < predicted / np.var(draws) < 1.33, (predicted, np.var(draws))


def test_without_the_pairs_cases_or_with_a_class_emptied_by_noise_the_evaluation_says_why() -> None:
    # Prepare
    x, y, names = _cohort(k=3)
    without = _released(x, y, names)
    del without.both_cases[("f0", "f1")]
    emptied = _released(x, y, names)
    emptied.cases = (float(len(y)), 0.0)
    emptied.exposed_cases = dict(emptied.exposed)
    emptied.both_cases = dict(emptied.both)
    # Execute
    missing = evaluate(statistics_from(without, names))  # type: ignore[arg-type]
    empty = evaluate(statistics_from(emptied, names))  # type: ignore[arg-type]
    # Assert
    assert "case counts were not released" in missing["unavailable"]
    assert "class empty" in empty["unavailable"]
    assert statistics_from(without, names) is not None      # the fits do not need them


@pytest.mark.parametrize(("mean", "sd"), [(-3.0, 0.0), (-3.0, 1.0), (-3.0, 15.0), (2.0, 0.5), (-1.0, 40.0)])
def test_the_mean_risk_of_a_normal_score_matches_numerical_integration(mean: float, sd: float) -> None:
    # Prepare
    from scipy import integrate, stats

    def integrand(s: float) -> float:
        return float(stats.norm.pdf(s, mean, sd) / (1 + math.exp(-s)))

    exact = (1 / (1 + math.exp(-mean)) if sd == 0 else
             integrate.quad(integrand, mean - 12 * sd, mean + 12 * sd, points=[0.0], limit=400)[0])
    # Execute
    found = logistic_normal_mean(mean, sd)
    # Assert
    assert found == pytest.approx(exact, abs=1e-6)
