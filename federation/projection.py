"""Service planning from noisy transition counts: matrices with intervals, and projections ahead.

Post-processing only — it sees the sum of the nodes' noisy counts and the noise's standard
deviation, never a row. Matrices over an ordinal state (health segments 1–20) are estimated by
empirical-Bayes shrinkage of each row toward the pooled pattern of moves up and down the scale
(``ordinal_shrinkage_intervals``): thin rows — a rare service status in a rare segment — are
otherwise mostly DP noise. Uncertainty combines the DP noise (variance σ² per cell, from the plan)
and sampling variation (≈ the count itself), propagated by the delta method: analytically for
matrix cells, and through a numerical Jacobian for the projections (every input cell, one
perturbation each — 1,600 for 20 segments × 4 service statuses, milliseconds).

Projection model (explainable on one line): next year's segment distribution is this year's
times the transition matrix pooled over service statuses as they are allocated today; service
demand is the distribution times today's share of each service status within each segment.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Z95", "matrix_intervals", "ordinal_shrinkage_intervals", "project"]

#: the normal quantile of two-sided 95 % intervals
Z95 = 1.959964


def matrix_intervals(counts: np.ndarray, noise_sd: float) -> dict[str, list[list[float]]]:
    """Row-normalised probabilities with standard errors and 95 % intervals, for one k×k count matrix."""
    p, n = _row_probabilities(counts)
    se = np.where(n > 0, np.sqrt(_cell_variance(p, n, noise_sd)), 0.5)
    return _with_bounds(p, se, n)


def _row_probabilities(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's counts (negatives set to zero) over its total — uniform for an empty row — and the totals."""
    c = np.clip(counts, 0.0, None)
    n = c.sum(axis=1, keepdims=True)
    return np.where(n > 0, c / np.where(n > 0, n, 1.0), 1.0 / c.shape[1]), n


def _cell_variance(p: np.ndarray, n: np.ndarray, noise_sd: float) -> np.ndarray:
    """Variance of a cell's c/n from sampling and from the noise on the cell and on its row's total."""
    safe = np.where(n > 0, n, 1.0)
    variance: np.ndarray = p * (1 - p) / safe + noise_sd**2 * (1 - 2 * p + p.shape[1] * p**2) / safe**2
    return variance


def _with_bounds(p: np.ndarray, se: np.ndarray, n: np.ndarray, **extra: Any) -> dict[str, Any]:
    return {"probabilities": p.tolist(), "standard_errors": se.tolist(),
            "lower": np.clip(p - Z95 * se, 0, 1).tolist(), "upper": np.clip(p + Z95 * se, 0, 1).tolist(),
            "row_counts": n[:, 0].tolist(), **extra}


def ordinal_shrinkage_intervals(counts: np.ndarray, noise_sd: float) -> dict[str, Any]:
    """Rows borrow strength from the common pattern of moves up and down the ordinal states.

    The prior for row *i* is the distribution of jumps (``to - from``) estimated from all *other*
    rows of the matrix (``_jump_pattern``), restricted to the states row *i* can reach. Each cell is
    then an empirical-Bayes mix of its own row's estimate and that prior, ``λ·raw + (1-λ)·prior``
    with ``λ = τ²/(τ² + v)``: ``v`` is the cell's variance from the DP noise and sampling, and
    ``τ = κ·max(prior, raw)`` its spread around the prior (a row may show a jump that its neighbours
    never make), with κ estimated from the matrix itself (method of moments, rows weighted by their
    count²). Rows with much data keep their own estimate; rows with
    little lean on the pooled pattern. Standard errors are the empirical-Bayes posterior ones,
    ``λ·v + (1-λ)²·var(prior)``.
    """
    raw, n = _row_probabilities(counts)
    k = raw.shape[0]
    jumps = np.arange(k)[None, :] - np.arange(k)[:, None] + k - 1     # jump-space column of each cell
    prior, prior_var = np.empty_like(raw), np.empty_like(raw)
    for row in range(k):
        others = np.arange(k) != row
        rate, rate_var = _jump_pattern(counts[others], n[others, 0], jumps[others], noise_sd)
        reach, reach_var = rate[jumps[row]], rate_var[jumps[row]]
        total = reach.sum()
        prior[row] = reach / total if total > 0 else 1.0 / k
        # delta method for a ratio of the jump rates: d(r_j / T) = dr_j / T - r_j dT / T²
        t2 = total**2 if total > 0 else 1.0
        prior_var[row] = ((1 - prior[row]) ** 2 * reach_var + prior[row] ** 2 * (reach_var.sum() - reach_var)) / t2

    v = _cell_variance(prior, n, noise_sd)
    weight = n**2
    excess = float((weight * ((raw - prior) ** 2 - v)).sum())
    scale = float((weight * prior**2).sum())
    kappa2 = max(excess / scale, 1e-6) if scale > 0 else 1e-6
    tau2 = kappa2 * np.maximum(prior, raw) ** 2   # a row can show a jump its neighbours never make
    lam = np.where((n > 0) & (tau2 + v > 0), tau2 / np.where(tau2 + v > 0, tau2 + v, 1.0), 0.0)
    mixed = lam * raw + (1 - lam) * prior
    sums = mixed.sum(axis=1, keepdims=True)
    p = mixed / np.where(sums > 0, sums, 1.0)
    se = np.sqrt(lam * v + (1 - lam) ** 2 * prior_var)
    return _with_bounds(p, se, n, unsmoothed_probabilities=raw.tolist(), own_data_weight=lam.tolist(),
                        spread_around_pooled_pattern=float(np.sqrt(kappa2)))


def _jump_pattern(counts: np.ndarray, rows: np.ndarray, jumps: np.ndarray, noise_sd: float,
                  iterations: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Relative rate of each jump (unnormalised) and its variance, from rows truncated at the ends.

    A row near an end cannot make every jump, so pooled counts under-represent the jumps that only
    some rows can make. Each row is a draw from the jump distribution restricted to its reachable
    jumps; the fixed point ``q(d) = pooled(d) / Σ_rows reaching d of n_row / mass_row(q)`` is the
    maximum-likelihood estimate under that truncation. Jumps whose pooled count is within two noise
    standard deviations of zero are set to zero.
    """
    width = 2 * jumps.shape[1] - 1
    reachable = np.zeros((len(rows), width), dtype=bool)
    np.put_along_axis(reachable, jumps, True, axis=1)
    pooled = np.bincount(jumps.ravel(), weights=counts.ravel(), minlength=width)
    rows_per_jump = reachable.sum(axis=0)
    pooled_var = noise_sd**2 * rows_per_jump + np.clip(pooled, 0.0, None)
    pooled = np.where(pooled > 2.0 * noise_sd * np.sqrt(rows_per_jump), pooled, 0.0)
    if pooled.sum() <= 0:
        return np.ones(width), np.ones(width)    # no pattern: a uniform prior, known to within ±100 %
    q = pooled / pooled.sum()
    exposure = rows_per_jump.astype(float)
    for _ in range(iterations):
        mass = reachable @ q
        exposure = (np.where(mass > 0, rows / np.where(mass > 0, mass, 1.0), 0.0)[:, None] * reachable).sum(axis=0)
        updated = np.where(exposure > 0, pooled / np.where(exposure > 0, exposure, 1.0), 0.0)
        updated /= updated.sum()
        if np.abs(updated - q).max() < 1e-12:
            q = updated
            break
        q = updated
    safe = np.where(exposure > 0, exposure, 1.0)
    return pooled / safe, pooled_var / safe**2


def _forward(c: np.ndarray, horizon: int) -> np.ndarray:
    """c: S×k×k counts (service, from, to) -> [distribution per year (h+1)×k, demand share per year (h+1)×S]."""
    pooled = c.sum(axis=0)
    rows = pooled.sum(axis=1, keepdims=True)
    k = pooled.shape[0]
    matrix = np.where(rows > 0, pooled / np.where(rows > 0, rows, 1.0), np.eye(k))
    by_segment = c.sum(axis=2)                                   # S×k residents per service within segment
    totals = by_segment.sum(axis=0)
    shares = np.where(totals > 0, by_segment / np.where(totals > 0, totals, 1.0), 1.0 / c.shape[0])
    start = pooled.sum(axis=0)
    d = start / start.sum() if start.sum() > 0 else np.full(k, 1.0 / k)
    distributions, demand = [d], [shares @ d]
    for _ in range(horizon):
        d = d @ matrix
        distributions.append(d)
        demand.append(shares @ d)
    return np.concatenate([np.ravel(distributions), np.ravel(demand)])


def project(counts: dict[str, np.ndarray], noise_sd: float, horizon: int, first_year: int | None,
            population: float | None) -> dict[str, Any]:
    """Segment distribution and service demand ``horizon`` years ahead, with 95 % bands."""
    services = sorted(counts)
    c = np.clip(np.stack([counts[s] for s in services]), 0.0, None)
    k = c.shape[1]
    base = _forward(c, horizon)
    variance = np.zeros_like(base)
    flat = c.reshape(-1)
    for index in range(flat.size):
        step = max(1.0, 1e-3 * flat[index])
        bumped = flat.copy()
        bumped[index] += step
        gradient = (_forward(bumped.reshape(c.shape), horizon) - base) / step
        variance += gradient**2 * (noise_sd**2 + flat[index])
    se = np.sqrt(variance)
    cut = (horizon + 1) * k
    years = list(range(horizon + 1)) if first_year is None else list(range(first_year, first_year + horizon + 1))

    def table(values: np.ndarray, errors: np.ndarray, width: int, scale: float = 1.0) -> dict[str, Any]:
        shaped, err = values.reshape(horizon + 1, width) * scale, errors.reshape(horizon + 1, width) * scale
        return {"estimate": shaped.tolist(), "lower": np.clip(shaped - Z95 * err, 0, None).tolist(),
                "upper": (shaped + Z95 * err).tolist()}

    scale = float(population) if population else 1000.0
    return {
        "years": years,
        "model": "d[t+1] = d[t] · P (transitions pooled over service statuses as allocated today); "
                 "demand[t] = d[t] · share of each service within each segment",
        "start": "the segment distribution over the observed years' end states",
        "segment_distribution": table(base[:cut], se[:cut], k),
        "service_demand": {"unit": "residents" if population else "per 1,000 residents", "services": services,
                           **table(base[cut:], se[cut:], len(services), scale)},
        "uncertainty": "95 % delta-method bands from the DP noise (σ per cell) and sampling variation",
    }
