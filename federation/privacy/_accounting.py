"""Privacy numbers from OpenDP: ρ of Gaussian releases, composition, and (ε, δ) for display.

Every figure here comes from an OpenDP measurement's privacy map, so the number shown to a privacy
officer is the one OpenDP proves for the mechanism that actually adds the noise.
"""

from __future__ import annotations

import math
from functools import lru_cache

# The specific OpenDP modules, not ``opendp.prelude``: the prelude also loads OpenDP's scikit-learn
# extras (and scikit-learn), 1.7 s of imports in every ClientApp process Flower starts per message.
import opendp.combinators as dp_c
import opendp.domains as dp_d
import opendp.measurements as dp_m
import opendp.metrics as dp_metrics
import opendp.mod as dp_mod

dp_mod.enable_features("contrib")

__all__ = ["epsilon", "gaussian_measurement", "gaussian_rho", "integer_gaussian_measurement", "integer_gaussian_rho",
           "integer_gaussian_vector_rho", "rho_for_epsilon"]


@lru_cache(maxsize=256)
def gaussian_measurement(dimension: int, scale: float) -> dp_mod.Measurement:
    """The Gaussian mechanism on a float vector under L2 distance, with zCDP as its privacy measure."""
    domain = dp_d.vector_domain(dp_d.atom_domain(T=float, nan=False), size=dimension)
    return dp_m.make_gaussian(domain, dp_metrics.l2_distance(T=float), scale=scale)


@lru_cache(maxsize=256)
def integer_gaussian_measurement(dimension: int, scale: float) -> dp_mod.Measurement:
    """The discrete Gaussian mechanism on an integer vector under L2 distance (zCDP): exact integer noise,
    for counts that are computed modulo a plaintext modulus under encryption."""
    domain = dp_d.vector_domain(dp_d.atom_domain(T=int), size=dimension)
    return dp_m.make_gaussian(domain, dp_metrics.l2_distance(T=int), scale=scale)


@lru_cache(maxsize=1024)
def integer_gaussian_rho(scale: float, releases: int = 1) -> float:
    """ρ of ``releases`` integer counts that one resident changes by at most 1 each, each with discrete
    Gaussian noise of this scale (OpenDP's privacy map and composition)."""
    if releases == 0:
        return 0.0
    measurement = integer_gaussian_measurement(1, scale)
    if releases == 1:
        return float(measurement.map(1))  # type: ignore[no-untyped-call]
    return float(dp_c.make_composition([measurement] * releases).map(1))  # type: ignore[no-untyped-call]


@lru_cache(maxsize=1024)
def integer_gaussian_vector_rho(scale: float, dimension: int, l2: int) -> float:
    """ρ of ``dimension`` integer counts released together when one resident changes them by at most ``l2`` in
    L2 norm (e.g. a resident's moves, all of which may fall in one count): OpenDP's map of the vector mechanism."""
    return float(integer_gaussian_measurement(dimension, scale).map(l2))  # type: ignore[no-untyped-call]


def gaussian_rho(sensitivity: float, scale: float, releases: int = 1) -> float:
    """ρ of ``releases`` Gaussian releases with this L2 sensitivity and noise scale (OpenDP composition)."""
    measurement = gaussian_measurement(1, scale)
    if releases == 1:
        return float(measurement.map(sensitivity))  # type: ignore[no-untyped-call]
    composed = dp_c.make_composition([measurement] * releases)
    return float(composed.map(sensitivity))  # type: ignore[no-untyped-call]


def _profile_epsilon(rho: float, delta: float) -> float:
    # A Gaussian measurement whose map at d_in=1 is exactly ρ: scale = 1/sqrt(2ρ).
    scale = (2.0 * rho) ** -0.5
    converted = dp_c.make_zCDP_to_approxDP(gaussian_measurement(1, scale))
    return float(converted.map(1.0).epsilon(delta))  # type: ignore[no-untyped-call]


@lru_cache(maxsize=1024)
def epsilon(rho: float, delta: float) -> float:
    """(ε, δ)-DP implied by ρ-zCDP — OpenDP's conversion (tighter than the classic ρ + 2√(ρ ln 1/δ)).
    Pure, so cached: a warm node plans the same study every round."""
    if rho <= 0:
        return 0.0
    return _profile_epsilon(rho, delta)


@lru_cache(maxsize=256)
def rho_for_epsilon(target_epsilon: float, delta: float) -> float:
    """The largest ρ whose OpenDP conversion stays within (ε, δ) — for calibrating noise to a budget.

    Pure and deterministic (47 OpenDP conversions), so a warm node computes it once per budget.
    """
    # The classic bound eps <= rho + 2 sqrt(rho ln(1/delta)) is looser than OpenDP's conversion, so the
    # rho it allows is a lower bracket; a few doublings find the upper one.
    if not (target_epsilon > 0 and 0 < delta < 1):
        raise ValueError("epsilon must be positive and delta in (0, 1)")
    log_term = math.log(1.0 / delta)
    lo = (math.sqrt(target_epsilon + log_term) - math.sqrt(log_term)) ** 2
    # epsilon(rho) >= rho, so rho = target_epsilon is always an upper bracket (lo may underflow to 0)
    hi = min(lo * 2, target_epsilon) if lo > 0 else target_epsilon
    while epsilon(hi, delta) <= target_epsilon:
        lo, hi = hi, hi * 2
    for _ in range(45):
        mid = (lo + hi) / 2
        if epsilon(mid, delta) <= target_epsilon:
            lo = mid
        else:
            hi = mid
    return lo
