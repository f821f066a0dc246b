"""Planning post-processing: intervals that cover, projections that follow the chain."""

from __future__ import annotations

import numpy as np

from federation.planning import matrix_intervals, project


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
