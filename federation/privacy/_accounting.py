"""Privacy numbers: ρ of Gaussian releases and their composition (OpenDP), and (ε, δ).

Every ρ here comes from an OpenDP measurement's privacy map and OpenDP's composition, so the number a
ledger keeps is the one OpenDP proves for the mechanism that actually adds the noise. Two views of (ε, δ):

- :func:`epsilon` — OpenDP's zCDP-to-approximate-DP conversion. It holds for *any* ρ-zCDP mechanism, so it is
  the one for budgets, caps and ledgers, which add up ρ across studies of every kind (discrete Gaussians under
  encryption included).
- :func:`gaussian_epsilon` — the exact (ε, δ) curve of the Gaussian mechanism (Balle & Wang 2018), for a study
  made only of Gaussian releases. Such a composition is itself one Gaussian mechanism with μ² = Σ (Δᵢ/σᵢ)² =
  2ρ, so its privacy loss is exactly that of μ-Gaussian DP: δ(ε) = Φ(−ε/μ + μ/2) − e^ε Φ(−ε/μ − μ/2). It is
  7–16 % below the zCDP conversion at the same ρ (ε = 1: 0.927 against 1.0), so a study calibrated to it adds
  about 7 % less noise. OpenDP 0.16 cannot give it (its Gaussian measurement has zCDP as its only output
  measure, and the profile ``make_zCDP_to_approxDP`` returns is the zCDP bound), so it is computed here from
  OpenDP's ρ; ``tests/unit/test_privacy.py`` checks it against Google's ``dp-accounting`` PLD accountant.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

# The specific OpenDP modules, not ``opendp.prelude``: the prelude also loads OpenDP's scikit-learn
# extras (and scikit-learn), 1.7 s of imports in every ClientApp process Flower starts per message.
import opendp.combinators as dp_c
import opendp.domains as dp_d
import opendp.measurements as dp_m
import opendp.metrics as dp_metrics
import opendp.mod as dp_mod

dp_mod.enable_features("contrib")

__all__ = ["epsilon", "gaussian_epsilon", "gaussian_measurement", "gaussian_rho", "integer_gaussian_measurement", "integer_gaussian_rho",
           "integer_gaussian_vector_rho", "rho_for_epsilon", "rho_for_gaussian_epsilon"]


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
    return _largest_within(lambda rho: epsilon(rho, delta) <= target_epsilon, lo, hi, steps=45, tolerance=0.0)[0]


def _largest_within(within: Callable[[float], bool], lo: float, hi: float, steps: int = 200,
                    tolerance: float = 1e-13) -> tuple[float, float]:
    """Bisection for a boundary: ``within`` holds at ``lo`` (and below); ``hi`` is doubled until it fails there,
    then the bracket is halved ``steps`` times or until its width is ``tolerance`` of ``hi``."""
    while within(hi):
        lo, hi = hi, hi * 2.0
    for _ in range(steps):
        mid = (lo + hi) / 2.0
        if within(mid):
            lo = mid
        else:
            hi = mid
        if hi - lo <= tolerance * hi:
            break
    return lo, hi


def _gaussian_delta(mu: float, eps: float) -> float:
    """δ(ε) of μ-Gaussian DP (Balle & Wang 2018, Thm. 8; Dong, Roth & Su 2019, Cor. 2.13)."""
    def phi(x: float) -> float:
        return 0.5 * math.erfc(-x / math.sqrt(2.0))

    tail = phi(-eps / mu - mu / 2.0)
    return phi(-eps / mu + mu / 2.0) - (math.exp(eps + math.log(tail)) if tail > 0 else 0.0)


#: an exact ε is reported 0.01 % higher: above floating-point error in the search, and above the discretisation
#: error of a pessimistic PLD accountant (``dp-accounting``'s is under 3e-6 relative for our studies), so what we
#: report is never below what such an accountant proves for the same mechanism
_MARGIN = 1e-4


@lru_cache(maxsize=1024)
def gaussian_epsilon(rho: float, delta: float) -> float:
    """The exact ε at ``delta`` of a study made only of Gaussian releases whose composed zCDP loss is ``rho``
    (OpenDP's ρ): μ = √(2ρ), and ε solves δ(ε) = ``delta`` on the μ-GDP curve; reported 0.01 % higher."""
    if rho <= 0:
        return 0.0
    mu = math.sqrt(2.0 * rho)
    if _gaussian_delta(mu, 0.0) <= delta:
        return 0.0
    # δ(ε) falls as ε grows: the boundary where it first reaches ``delta``, from above
    _, hi = _largest_within(lambda eps: _gaussian_delta(mu, eps) > delta, 0.0, 1.0)
    return hi * (1.0 + _MARGIN)


@lru_cache(maxsize=256)
def rho_for_gaussian_epsilon(target_epsilon: float, delta: float) -> float:
    """The largest ρ whose exact Gaussian ε (:func:`gaussian_epsilon`) stays within ``target_epsilon`` at
    ``delta`` — for calibrating a study made only of Gaussian releases."""
    if not (target_epsilon > 0 and 0 < delta < 1):
        raise ValueError("epsilon must be positive and delta in (0, 1)")
    exact_target = target_epsilon / (1.0 + _MARGIN) * (1.0 - 1e-9)
    # in μ; δ(ε) grows with μ
    mu, _ = _largest_within(lambda mu: _gaussian_delta(mu, exact_target) <= delta, 0.0, 1.0)
    rho = mu * mu / 2.0
    while rho > 0 and gaussian_epsilon(rho, delta) > target_epsilon:   # never above the target, whatever rounding
        rho *= 1.0 - 1e-7
    return rho
