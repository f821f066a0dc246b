"""Privacy numbers from OpenDP: ρ of Gaussian releases, composition, and (ε, δ) for display.

Every figure here comes from an OpenDP measurement's privacy map, so the number shown to a privacy
officer is the one OpenDP proves for the mechanism that actually adds the noise.
"""

from __future__ import annotations

from functools import lru_cache

import opendp.prelude as dp

dp.enable_features("contrib")

__all__ = ["epsilon", "gaussian_measurement", "gaussian_rho", "rho_for_epsilon"]


@lru_cache(maxsize=256)
def gaussian_measurement(dimension: int, scale: float) -> dp.Measurement:
    """The Gaussian mechanism on a float vector under L2 distance, with zCDP as its privacy measure."""
    space = dp.vector_domain(dp.atom_domain(T=float, nan=False), size=dimension), dp.l2_distance(T=float)
    return dp.m.make_gaussian(*space, scale=scale)


def gaussian_rho(sensitivity: float, scale: float, releases: int = 1) -> float:
    """ρ of ``releases`` Gaussian releases with this L2 sensitivity and noise scale (OpenDP composition)."""
    measurement = gaussian_measurement(1, scale)
    if releases == 1:
        return float(measurement.map(sensitivity))  # type: ignore[no-untyped-call]
    composed = dp.c.make_composition([measurement] * releases)
    return float(composed.map(sensitivity))  # type: ignore[no-untyped-call]


def _profile_epsilon(rho: float, delta: float) -> float:
    # A Gaussian measurement whose map at d_in=1 is exactly ρ: scale = 1/sqrt(2ρ).
    scale = (2.0 * rho) ** -0.5
    converted = dp.c.make_zCDP_to_approxDP(gaussian_measurement(1, scale))
    return float(converted.map(1.0).epsilon(delta))  # type: ignore[no-untyped-call]


def epsilon(rho: float, delta: float) -> float:
    """(ε, δ)-DP implied by ρ-zCDP — OpenDP's conversion (tighter than the classic ρ + 2√(ρ ln 1/δ))."""
    if rho <= 0:
        return 0.0
    return _profile_epsilon(rho, delta)


def rho_for_epsilon(target_epsilon: float, delta: float) -> float:
    """The largest ρ whose OpenDP conversion stays within (ε, δ) — for calibrating noise to a budget."""
    lo, hi = 0.0, max(target_epsilon, 1.0)
    while epsilon(hi, delta) <= target_epsilon:
        hi *= 2
    for _ in range(80):
        mid = (lo + hi) / 2
        if epsilon(mid, delta) <= target_epsilon:
            lo = mid
        else:
            hi = mid
    return lo
