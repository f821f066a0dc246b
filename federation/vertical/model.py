"""A multivariable model across sectors from released sufficient statistics: the screened factors adjusted for
each other, with no per-resident score, residual or gradient anywhere.

For 0/1 factors the pair study's counts *are* the sufficient statistics of a linear model over the screened
factors: with the intercept as column 0, ``XᵀX`` has n, each factor's exposed count (its column sum, and —
x² = x — its diagonal) and each pair's ``both`` count; ``Xᵀy`` has the cases and each factor's exposed cases.
Every one of them was released with noise before anything was decrypted (stage 1 and the pairs), so fitting
this model is post-processing: it costs no privacy beyond the study's, and it needs every pair among the
screened factors (the template's screen releases all of them).

Two fits from the same statistics:
- the **linear probability model** (exact least squares: ``β = (XᵀX)⁻¹ Xᵀy``), each coefficient an adjusted
  risk difference;
- the **logistic model, one Newton step from the null model**: the log-likelihood's Σ log(1 + e^z) replaced by
  its second-order expansion at z₀ = logit(ȳ), which leaves only XᵀX and Xᵀy:
  ``β = (z₀, 0, …) + ((XᵀX)⁻¹Xᵀy − ȳ e₀) / (ȳ(1 − ȳ))``. This is an approximation: on the synthetic
  municipality's children (4.5 % outcome, 30 screened factors, no noise) its coefficients correlate 0.97
  with the exact logistic fit's and overstate them by a factor of about 1.7; the ranking of the factors is
  what it preserves (``benchmarks/README.md``). It is reported as such, beside the exact linear model.
Standard errors combine sampling (``(XᵀX)⁻¹ ȳ(1−ȳ)`` for the linear model, ``(XᵀX)⁻¹/w`` for the step) and the
DP noise of every released count, propagated through the fit by its Jacobian (computed by finite differences
over the released counts — deterministic, no random draws). A noisy XᵀX that is not positive definite is
projected to the nearest one (eigenvalues floored) before solving; the output says how many were floored.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from federation.projection import Z95

__all__ = ["Statistics", "adjusted_model", "statistics_from"]


class Statistics:
    """Released counts laid out as ``XᵀX`` and ``Xᵀy`` over ``factors`` (intercept first), with their noise sds."""

    def __init__(self, factors: list[str], values: np.ndarray, sds: np.ndarray, index: dict[tuple[str, ...], int]):
        self.factors, self.values, self.sds, self.index = factors, values, sds, index
        # where each entry of XᵀX and Xᵀy is among the released counts (the fit runs once per count for its
        # Jacobian, so the layout is worked out once)
        k = len(factors)
        self._xtx = np.zeros((k + 1, k + 1), dtype=np.int64)
        self._xty = np.zeros(k + 1, dtype=np.int64)
        self._xtx[0, 0], self._xty[0] = index[("n",)], index[("cases",)]
        for j, f in enumerate(factors, start=1):
            self._xtx[0, j] = self._xtx[j, 0] = self._xtx[j, j] = index[("exposed", f)]
            self._xty[j] = index[("exposed_cases", f)]
        for i, a in enumerate(factors, start=1):
            for j, b in enumerate(factors, start=1):
                if i < j:
                    self._xtx[i, j] = self._xtx[j, i] = index[("both", *sorted((a, b)))]

    def matrices(self, values: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        v = self.values if values is None else values
        return v[self._xtx], v[self._xty]


def statistics_from(released: Any, factors: list[str]) -> Statistics | None:
    """The statistics over ``factors`` if every pair among them was released (else None)."""
    entries: list[tuple[tuple[str, ...], tuple[float, float]]] = [(("n",), released.cohort_size),
                                                                   (("cases",), released.cases)]
    for f in factors:
        entries += [(("exposed", f), released.exposed[f]), (("exposed_cases", f), released.exposed_cases[f])]
    for i, a in enumerate(factors):
        for b in factors[i + 1:]:
            pair = tuple(sorted((a, b)))
            if pair not in released.both:
                return None
            entries.append((("both", *pair), released.both[pair]))
    index = {key: position for position, (key, _) in enumerate(entries)}
    return Statistics(factors, np.array([v for _, (v, _) in entries], dtype=float),
                      np.array([sd for _, (_, sd) in entries], dtype=float), index)


def _solve(xtx: np.ndarray, xty: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Least squares through the nearest positive-definite XᵀX: (β, (XᵀX)⁻¹, how many eigenvalues were floored)."""
    symmetric = (xtx + xtx.T) / 2
    values, vectors = np.linalg.eigh(symmetric)
    floor = max(float(values.max()) * 1e-9, 1e-6)
    floored = int((values < floor).sum())
    inverse = (vectors / np.maximum(values, floor)) @ vectors.T
    return inverse @ xty, inverse, floored


def _fits(stats: Statistics, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xtx, xty = stats.matrices(values)
    linear, _, _ = _solve(xtx, xty)
    rate = min(max(xty[0] / max(xtx[0, 0], 1.0), 1e-4), 1 - 1e-4)
    step = linear.copy()
    step[0] -= rate
    step /= rate * (1 - rate)
    step[0] += math.log(rate / (1 - rate))
    return linear, step


def adjusted_model(stats: Statistics) -> dict[str, Any]:
    """Both fits with 95 % intervals (sampling + DP noise), factors ranked by |z| of the logistic step."""
    xtx, xty = stats.matrices()
    _, inverse, floored = _solve(xtx, xty)
    linear, step = _fits(stats, stats.values)
    rate = min(max(xty[0] / max(xtx[0, 0], 1.0), 1e-4), 1 - 1e-4)
    weight = rate * (1 - rate)
    # the Jacobian of both fits with respect to every released count, by central differences
    noise_linear, noise_step = np.zeros(len(linear)), np.zeros(len(step))
    for k, sd in enumerate(stats.sds):
        if sd <= 0:
            continue
        h = max(1.0, 1e-3 * abs(stats.values[k]))
        up, down = stats.values.copy(), stats.values.copy()
        up[k] += h
        down[k] -= h
        (lin_up, step_up), (lin_down, step_down) = _fits(stats, up), _fits(stats, down)
        noise_linear += ((lin_up - lin_down) / (2 * h) * sd) ** 2
        noise_step += ((step_up - step_down) / (2 * h) * sd) ** 2
    sampling_linear = np.diag(inverse) * weight
    sampling_step = np.diag(inverse) / weight
    se_linear = np.sqrt(sampling_linear + noise_linear)
    se_step = np.sqrt(sampling_step + noise_step)
    rows: list[dict[str, Any]] = []
    for j, factor in enumerate(stats.factors, start=1):
        z = step[j] / se_step[j] if se_step[j] > 0 else 0.0
        rows.append({
            "factor": factor,
            "odds_ratio": {"estimate": math.exp(min(step[j], 700)), "lower": math.exp(min(step[j] - Z95 * se_step[j], 700)),
                           "upper": math.exp(min(step[j] + Z95 * se_step[j], 700))},
            "log_odds": {"estimate": float(step[j]), "se": float(se_step[j])},
            "risk_difference": {"estimate": float(linear[j]), "lower": float(linear[j] - Z95 * se_linear[j]),
                                "upper": float(linear[j] + Z95 * se_linear[j]), "se": float(se_linear[j])},
            "z": float(z),
            "noise_share": float(noise_step[j] / (noise_step[j] + sampling_step[j])) if se_step[j] > 0 else 0.0,
        })
    rows.sort(key=lambda r: (-abs(float(r["z"])), str(r["factor"])))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return {
        "factors": rows,
        "intercept": {"log_odds": float(step[0]), "risk": float(linear[0])},
        "outcome_rate": rate,
        "eigenvalues_floored": floored,
        "method": "sufficient statistics (XᵀX, Xᵀy) from the released counts; linear probability model exact; "
                  "logistic model by one Newton step from the null model (an approximation, see the README)",
    }
