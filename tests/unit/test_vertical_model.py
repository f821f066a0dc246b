"""The adjusted model from released sufficient statistics: exact least squares without noise, the stated logistic
step, intervals whose noise part matches simulated releases, and a non-positive-definite XᵀX survived."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import numpy as np

from federation.vertical.model import adjusted_model, statistics_from


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


def test_a_noisy_xtx_that_is_not_positive_definite_still_gives_finite_estimates() -> None:
    # Prepare: two identical factors (a singular XᵀX), then a pair count pushed far above the exposed counts
    x, y, names = _cohort(k=3)
    x = np.column_stack([x, x[:, 0]])
    names = names + ["copy"]
    released = _released(x, y, names)
    released.both[("f1", "f2")] = (released.both[("f1", "f2")][0] + 5_000, 0.0)
    stats = statistics_from(released, names)
    assert stats is not None
    # Execute
    model = adjusted_model(stats)
    # Assert
    assert model["eigenvalues_floored"] >= 1
    assert all(math.isfinite(r["log_odds"]["estimate"]) and math.isfinite(r["z"]) for r in model["factors"])


def test_without_every_pair_among_the_factors_there_is_no_model() -> None:
    x, y, names = _cohort(k=3)
    released = _released(x, y, names)
    del released.both[("f0", "f2")]
    assert statistics_from(released, names) is None
