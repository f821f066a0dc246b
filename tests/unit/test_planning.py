"""Planning post-processing: intervals that cover, projections that follow the chain."""

from __future__ import annotations

import numpy as np

from federation.projection import matrix_intervals, ordinal_shrinkage_intervals, project


def _chain() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Two service statuses over three segments; counts exactly proportional to a known chain."""
    p_none = np.array([[0.8, 0.2, 0.0], [0.1, 0.8, 0.1], [0.0, 0.3, 0.7]])
    p_care = np.array([[0.9, 0.1, 0.0], [0.3, 0.6, 0.1], [0.0, 0.5, 0.5]])
    residents_none, residents_care = np.array([6000.0, 3000.0, 500.0]), np.array([0.0, 1000.0, 1500.0])
    counts = {"care": residents_care[:, None] * p_care, "none": residents_none[:, None] * p_none}
    pooled = (counts["care"] + counts["none"]) / (residents_care + residents_none)[:, None]
    return pooled, counts


def test_projection_follows_the_pooled_chain_and_demand_follows_todays_allocation() -> None:
    # Prepare
    pooled, counts = _chain()
    start = (counts["care"] + counts["none"]).sum(axis=0)
    start = start / start.sum()
    # Execute
    out = project(counts, noise_sd=0.0, horizon=5, first_year=2025, population=None)
    # Assert
    estimate = np.array(out["segment_distribution"]["estimate"])
    assert out["years"] == [2025, 2026, 2027, 2028, 2029, 2030]
    np.testing.assert_allclose(estimate[0], start)
    np.testing.assert_allclose(estimate[5], start @ np.linalg.matrix_power(pooled, 5), atol=1e-12)
    care_share = np.array([0.0, 0.25, 0.75])
    demand = np.array(out["service_demand"]["estimate"])
    assert out["service_demand"]["services"] == ["care", "none"]
    np.testing.assert_allclose(demand[5][0], 1000 * estimate[5] @ care_share, rtol=1e-9)


def test_bands_widen_with_more_noise_and_contain_the_estimate() -> None:
    _, counts = _chain()
    quiet = project(counts, noise_sd=1.0, horizon=5, first_year=None, population=10_000)
    loud = project(counts, noise_sd=50.0, horizon=5, first_year=None, population=10_000)
    for out in (quiet, loud):
        d = out["segment_distribution"]
        assert np.all(np.array(d["lower"]) <= np.array(d["estimate"]) + 1e-12)
        assert np.all(np.array(d["estimate"]) <= np.array(d["upper"]) + 1e-12)
    width = lambda out: np.subtract(out["service_demand"]["upper"], out["service_demand"]["lower"])[5]  # noqa: E731
    assert np.all(width(loud) > width(quiet))


def test_matrix_intervals_include_dp_noise() -> None:
    # Prepare: one row of 100 moves; with noise sd 10 per cell the interval must widen markedly
    counts = np.array([[60.0, 40.0], [0.0, 0.0]])
    # Execute
    plain, noisy = matrix_intervals(counts, 0.0), matrix_intervals(counts, 10.0)
    # Assert: sampling-only SE is sqrt(.6*.4/100); the empty row falls back to uniform with a wide SE
    assert abs(plain["standard_errors"][0][0] - (0.24 / 100) ** 0.5) < 1e-12
    assert noisy["standard_errors"][0][0] > 1.5 * plain["standard_errors"][0][0]
    assert noisy["probabilities"][1] == [0.5, 0.5] and noisy["standard_errors"][1][0] == 0.5


def _banded_chain(rng: np.random.Generator, k: int = 20) -> np.ndarray:
    """Moves of about one state up, spread 1, each cell perturbed by ±15 % (lognormal), rows normalised."""
    index = np.arange(k)
    jump = index[None, :] - index[:, None] - 0.4
    weights = np.exp(-0.5 * jump**2) * rng.lognormal(0.0, 0.15, size=(k, k))
    weights[weights < 1e-4] = 0.0
    matrix: np.ndarray = weights / weights.sum(axis=1, keepdims=True)
    return matrix


def _noisy_counts(rng: np.random.Generator, truth: np.ndarray, residents: np.ndarray, noise_sd: float) -> np.ndarray:
    counts = np.stack([rng.multinomial(n, row) for n, row in zip(residents, truth)]).astype(float)
    return counts + rng.normal(0.0, noise_sd, size=counts.shape)   # test data, not privacy noise


def test_ordinal_shrinkage_beats_row_by_row_estimates_where_rows_are_thin() -> None:
    # Prepare: rows from 20,000 moves down to 30 (like a rare service status), noise sd 22 per cell
    rng = np.random.default_rng(11)
    truth = _banded_chain(rng)
    residents = np.geomspace(20_000, 30, 20).astype(int)
    errors: dict[str, list[float]] = {"raw": [], "shrunk": []}
    # Execute
    for _ in range(5):
        counts = _noisy_counts(rng, truth, residents, 22.0)
        errors["raw"].append(np.abs(np.array(matrix_intervals(counts, 22.0)["probabilities"]) - truth).mean())
        errors["shrunk"].append(
            np.abs(np.array(ordinal_shrinkage_intervals(counts, 22.0)["probabilities"]) - truth).mean())
    # Assert: well under half the error, and rows remain probability distributions
    assert np.mean(errors["shrunk"]) < 0.5 * np.mean(errors["raw"])
    found = np.array(ordinal_shrinkage_intervals(counts, 22.0)["probabilities"])
    np.testing.assert_allclose(found.sum(axis=1), 1.0, atol=1e-12)
    assert (found >= 0).all()


def test_rows_with_much_data_keep_their_own_estimate() -> None:
    # Prepare: a first row so large that noise and sampling are negligible against the ±15 % heterogeneity
    rng = np.random.default_rng(12)
    truth = _banded_chain(rng)
    residents = np.full(20, 300)
    residents[0] = 5_000_000
    counts = _noisy_counts(rng, truth, residents, 22.0)
    # Execute
    out = ordinal_shrinkage_intervals(counts, 22.0)
    # Assert: the big row's own data dominates every cell it reaches; thin rows lean on the pooled pattern
    own = np.array(out["own_data_weight"])
    assert (own[0][truth[0] > 0.01] > 0.95).all()
    assert own[10][truth[10] > 0.01].mean() < 0.5
    np.testing.assert_allclose(out["probabilities"][0], out["unsmoothed_probabilities"][0], atol=2e-3)


def test_ordinal_shrinkage_intervals_cover_the_truth() -> None:
    # Prepare
    rng = np.random.default_rng(13)
    truth = _banded_chain(rng)
    residents = np.geomspace(20_000, 30, 20).astype(int)
    covered: list[float] = []
    # Execute
    for _ in range(20):
        out = ordinal_shrinkage_intervals(_noisy_counts(rng, truth, residents, 22.0), 22.0)
        inside = (np.array(out["lower"]) - 1e-12 <= truth) & (truth <= np.array(out["upper"]) + 1e-12)
        covered.append(inside[truth > 0.02].mean())
    # Assert: near the nominal 95 % on every cell that matters (the shrinkage bias costs a little)
    assert np.mean(covered) > 0.85
