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
over the released counts — deterministic, no random draws). A noisy XᵀX that is not positive definite does not
determine the model: flooring even one eigenvalue puts coefficients of 10⁸ along its direction (measured on
20,000 children, 2–4 of 8 releases). Then no model and no evaluation is given, only why (:func:`undetermined`);
on the synthetic town that is every release below about 12,000 children and none at 62,000.

The model is evaluated from the same counts (:func:`evaluate`): AUC, Brier score, calibration in the large — no
per-resident score is ever formed, here or at a node.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from federation.projection import Z95

__all__ = ["Statistics", "adjusted_model", "auc_estimate", "evaluate", "logistic_normal_mean", "statistics_from",
           "undetermined"]

#: a standard normal on a fine grid over ±8 sd (weights normalised) for means over a normal score: unlike a
#: 40-point Gauss–Hermite rule, it stays accurate when a noisy score's sd is wide (15 logits and more)
_NODES = np.linspace(-8.0, 8.0, 4001)
_WEIGHTS = np.exp(-_NODES**2 / 2) / np.exp(-_NODES**2 / 2).sum()


class Statistics:
    """Released counts laid out as ``XᵀX`` and ``Xᵀy`` over ``factors`` (intercept first), with their noise sds.

    ``cases_xtx`` (``Σ y·x xᵀ``: the cases, each factor's exposed cases, each pair's ``both_cases``) is laid out too
    when every pair's ``both_cases`` was released; the private evaluation needs it, the fits do not.
    """

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
        self._cases: np.ndarray | None = None
        if all(("both_cases", *sorted((a, b))) in index for i, a in enumerate(factors) for b in factors[i + 1:]):
            self._cases = np.zeros((k + 1, k + 1), dtype=np.int64)
            self._cases[0, :], self._cases[:, 0] = self._xty, self._xty
            np.fill_diagonal(self._cases, self._xty)
            for i, a in enumerate(factors, start=1):
                for j, b in enumerate(factors, start=1):
                    if i < j:
                        self._cases[i, j] = self._cases[j, i] = index[("both_cases", *sorted((a, b)))]
        #: the released counts the fits depend on (the Jacobian of a fit runs over these only)
        self.fit_entries = np.unique(np.concatenate([self._xtx.ravel(), self._xty]))

    def matrices(self, values: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        v = self.values if values is None else values
        return v[self._xtx], v[self._xty]

    @property
    def has_case_moments(self) -> bool:
        return self._cases is not None

    def case_moments(self, values: np.ndarray | None = None) -> np.ndarray:
        """``Σ y·x xᵀ`` with the intercept as column 0 (a ValueError if the pairs' cases were not released)."""
        if self._cases is None:
            raise ValueError("the pairs' cases were not released: no class moments")
        v = self.values if values is None else values
        return v[self._cases]  # type: ignore[no-any-return]


def statistics_from(released: Any, factors: list[str]) -> Statistics | None:
    """The statistics over ``factors`` if every pair among them was released (else None); the pairs' cases join
    them when every one was released."""
    entries: list[tuple[tuple[str, ...], tuple[float, float]]] = [(("n",), released.cohort_size),
                                                                   (("cases",), released.cases)]
    for f in factors:
        entries += [(("exposed", f), released.exposed[f]), (("exposed_cases", f), released.exposed_cases[f])]
    pairs = [tuple(sorted((a, b))) for i, a in enumerate(factors) for b in factors[i + 1:]]
    if any(pair not in released.both for pair in pairs):
        return None
    entries += [(("both", *pair), released.both[pair]) for pair in pairs]
    both_cases = getattr(released, "both_cases", {})
    if all(pair in both_cases for pair in pairs):
        entries += [(("both_cases", *pair), both_cases[pair]) for pair in pairs]
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


def undetermined(stats: Statistics) -> str | None:
    """Why the released counts do not determine the model (a noisy XᵀX that is not positive definite), or None."""
    xtx, xty = stats.matrices()
    _, _, floored = _solve(xtx, xty)
    if not floored:
        return None
    return (f"the noise outweighs the counts at this size: {floored} of the {len(xtx)} directions of the model's "
            "XᵀX came out at or below zero, so the released counts do not determine the adjusted model (more "
            "children, fewer screened factors or a larger budget would)")


def _fits(stats: Statistics, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xtx, xty = stats.matrices(values)
    linear, _, _ = _solve(xtx, xty)
    rate = min(max(xty[0] / max(xtx[0, 0], 1.0), 1e-4), 1 - 1e-4)
    step = linear.copy()
    step[0] -= rate
    step /= rate * (1 - rate)
    step[0] += math.log(rate / (1 - rate))
    return linear, step


def _noise_variance(stats: Statistics, measures: Callable[[np.ndarray], np.ndarray | None],
                    entries: Iterable[int]) -> np.ndarray | None:
    """The DP noise's variance in each of ``measures`` (a function of the released counts): Σ_k (∂m/∂count_k ·
    sd_k)² over ``entries``, by central differences — deterministic, no random draws; None where a nudged count
    leaves the measures undefined."""
    at = measures(stats.values)
    if at is None:
        return None
    total = np.zeros(len(at))
    for k in entries:
        sd = stats.sds[k]
        if sd <= 0:
            continue
        h = max(1.0, 1e-3 * abs(stats.values[k]))
        up, down = stats.values.copy(), stats.values.copy()
        up[k] += h
        down[k] -= h
        above, below = measures(up), measures(down)
        if above is None or below is None:
            return None
        total += ((above - below) / (2 * h) * sd) ** 2
    return total


def adjusted_model(stats: Statistics) -> dict[str, Any]:
    """Both fits with 95 % intervals (sampling + DP noise), factors ranked by |z| of the logistic step; or, where
    the counts do not determine them, ``{"unavailable": why}`` (:func:`undetermined`)."""
    why = undetermined(stats)
    if why is not None:
        return {"unavailable": why}
    xtx, xty = stats.matrices()
    _, inverse, _ = _solve(xtx, xty)
    linear, step = _fits(stats, stats.values)
    rate = min(max(xty[0] / max(xtx[0, 0], 1.0), 1e-4), 1 - 1e-4)
    weight = rate * (1 - rate)
    # the Jacobian of both fits with respect to every released count, by central differences
    noise = _noise_variance(stats, lambda values: np.concatenate(_fits(stats, values)), stats.fit_entries)
    assert noise is not None     # the fits are defined everywhere
    noise_linear, noise_step = noise[:len(linear)], noise[len(linear):]
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
        "method": "sufficient statistics (XᵀX, Xᵀy) from the released counts; linear probability model exact; "
                  "logistic model by one Newton step from the null model (an approximation, see the README)",
    }


def _nearest_covariance(matrix: np.ndarray) -> np.ndarray:
    """The nearest positive-semidefinite matrix (negative eigenvalues set to 0): a class's covariance from noisy
    counts — the cases' above all, a few thousand children under noise on every pair — need not be one."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.maximum(values, 0.0)) @ vectors.T  # type: ignore[no-any-return]


def logistic_normal_mean(mean: float, sd: float) -> float:
    """E[σ(s)] for s ~ N(mean, sd²), by the grid above."""
    score = mean + max(sd, 0.0) * _NODES
    return float(_WEIGHTS @ (1.0 / (1.0 + np.exp(-np.clip(score, -700, 700)))))


def _evaluation_values(stats: Statistics, values: np.ndarray) -> np.ndarray | None:
    """(AUC, Brier score, scaled Brier, mean predicted risk of the logistic step) from the released counts, or None
    when the noise leaves a class with no cohort or the score no spread."""
    xtx, xty = stats.matrices(values)
    linear, step = _fits(stats, values)
    classes = []
    for raw in (stats.case_moments(values), xtx - stats.case_moments(values)):
        count = float(raw[0, 0])
        if count < 2:
            return None
        mean = raw[0] / count
        classes.append((count, mean, _nearest_covariance(raw / count - np.outer(mean, mean))))
    (cases, mean_1, cov_1), (noncases, mean_0, cov_0) = classes
    spread = float(linear @ cov_1 @ linear + linear @ cov_0 @ linear)
    if not spread > 0:
        return None
    auc = 0.5 * (1.0 + math.erf(float(linear @ (mean_1 - mean_0)) / math.sqrt(2.0 * spread)))
    n = cases + noncases
    brier = float(xty[0] - 2 * linear @ xty + linear @ xtx @ linear) / n
    rate = min(max(cases / n, 1e-4), 1 - 1e-4)
    expected = 0.0
    for count, mean, cov in ((cases, mean_1, cov_1), (noncases, mean_0, cov_0)):
        expected += count / n * logistic_normal_mean(float(step @ mean), math.sqrt(max(float(step @ cov @ step), 0.0)))
    return np.array([auc, brier, 1.0 - brier / (rate * (1 - rate)), expected])


def auc_estimate(stats: Statistics) -> float | None:
    """The adjusted model's binormal AUC alone (no interval), as :func:`evaluate` gives it; None where it gives none."""
    if not stats.has_case_moments or undetermined(stats) is not None:
        return None
    found = _evaluation_values(stats, stats.values)
    return None if found is None else float(found[0])


def evaluate(stats: Statistics) -> dict[str, Any]:
    """How well the adjusted model separates and predicts, from the released counts alone (no per-resident score
    exists anywhere): post-processing, no privacy cost.

    - **AUC** (discrimination) under the binormal approximation: the model's score ``s = xᵀβ`` among the cases and
      among the others has a mean and a variance that are exact functions of the released counts (the class
      moments ``Σ y·x xᵀ`` are the cases, exposed cases and the pairs' ``both_cases``; the others' are ``XᵀX``
      minus them), and the AUC is ``Φ((μ₁ − μ₀)/√(σ₁² + σ₀²))``. The linear model and the logistic step share
      it (their slopes are proportional). The approximation is the binormal one: measured on the synthetic
      town's children against the exact AUC of the same score on the pooled rows, within 0.003–0.008 at 15
      factors and 0.003–0.012 at 30 (benchmarks/README.md). Its interval adds Hanley and McNeil's sampling
      variance and the DP noise. The noise pulls it up: the model is fitted to the same noisy counts it is
      evaluated on, so part of the noise reads as separation (at ε = 1 on the synthetic town's 62,000 children,
      0.784–0.791 on average against 0.763; the interval still covered 0.763 in 95–98 % of releases).
    - **Brier score** of the linear probability model, exact: ``(Σy − 2βᵀXᵀy + βᵀXᵀXβ)/n``; scaled against the
      outcome rate's own ``ȳ(1 − ȳ)`` (the share of the outcome's variance the factors explain). Withheld when
      the noise put it outside [0, ȳ(1 − ȳ)] or left XᵀX indefinite (the identity then no longer measures a
      squared error).
    - **Calibration in the large** of the logistic step: its mean predicted risk (each class's score taken as
      normal) against the observed rate. The linear model's equals the rate exactly, by construction. A ratio
      well above 1 says the step's odds ratios are too large to read as sizes (the README's 1.7x).

    Evaluated on the children it was fitted on (no second release to hold out; 15 coefficients against tens of
    thousands of children leave little optimism). The noise parts are the delta method over every released count.
    A class covariance that the noise leaves with negative eigenvalues is projected to the nearest positive-
    semidefinite one first.
    """
    if not stats.has_case_moments:
        return {"unavailable": "the pairs' case counts were not released, so the score's class moments are unknown"}
    why = undetermined(stats)
    if why is not None:
        return {"unavailable": why}
    found = _evaluation_values(stats, stats.values)
    if found is None:
        return {"unavailable": "the noisy counts leave a class empty or the score without spread"}
    noise = _noise_variance(stats, lambda values: _evaluation_values(stats, values), range(len(stats.values)))
    if noise is None:
        return {"unavailable": "the noisy counts leave a class nearly empty or the score nearly without spread"}
    auc, brier, scaled, expected = (float(v) for v in found)
    xtx, xty = stats.matrices()
    cases, others = max(float(xty[0]), 1.0), max(float(xtx[0, 0] - xty[0]), 1.0)
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    sampling = max((auc * (1 - auc) + (cases - 1) * (q1 - auc**2) + (others - 1) * (q2 - auc**2)) / (cases * others),
                   0.0)
    se = math.sqrt(sampling + noise[0])
    rate = float(xty[0]) / float(xtx[0, 0])
    return {
        "auc": {"estimate": auc, "lower": max(auc - Z95 * se, 0.0), "upper": min(auc + Z95 * se, 1.0), "se": se,
                "noise_share": float(noise[0] / (sampling + noise[0])) if sampling + noise[0] > 0 else 0.0},
        # in-sample least squares with an intercept lies in [0, ȳ(1 − ȳ)]: outside it, the noise decided the number
        **({"brier": {"estimate": brier, "noise_sd": float(math.sqrt(noise[1]))},
            "scaled_brier": {"estimate": scaled, "noise_sd": float(math.sqrt(noise[2]))}}
           if 0.0 <= scaled <= 1.0 else
           {"brier": None, "scaled_brier": None,
            "brier_unavailable": "the noisy counts put the Brier score outside [0, ȳ(1 − ȳ)], where least squares "
                                 "cannot be: the noise, not the data, decided it"}),
        "calibration_in_the_large": {"observed_rate": rate, "mean_predicted_risk": expected,
                                     "noise_sd": float(math.sqrt(noise[3])),
                                     "ratio": expected / rate if rate > 0 else None},
        "method": "from the released counts alone: AUC under the binormal approximation of the score among cases and "
                  "among the others (their means and variances are exact functions of the counts) — the noise "
                  "pulls it up, as the model is fitted to the same noisy counts; the linear model's Brier score, "
                  "exact; the logistic step's mean predicted risk against the observed rate",
    }
