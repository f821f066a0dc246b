"""Logistic regression on a node: DP gradient descent, and the statistics of a noisy Newton round.

Each resident's gradient (summed over the resident's rows) is clipped to ``clipping_norm``; the
clipped sum gets Gaussian noise from :mod:`federation.privacy` at every step; the node divides by
its noisy resident count (released once), never by the true one. Binary outcomes are ordinary
logistic regression; more classes are multinomial with the first class as reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from federation.evaluation import LOGIT_RANGE
from federation.privacy import ModelPlan, column_domain, gaussian_release
from federation.spec import ModelSpec
from federation.tasks.newton import NewtonSolver, feature_columns, upper_triangle
from schemas.contract import Contract

if TYPE_CHECKING:  # loaded lazily: a cached training round on a node needs neither
    import pandas as pd
    import scipy.sparse as sparse


@dataclass(frozen=True)
class Design:
    x: np.ndarray          # rows x features (scaled to [0, 1], intercept last)
    y: np.ndarray          # class index per row
    resident: np.ndarray   # dense resident index per row (for per-resident clipping)
    residents: int

    @property
    def groups(self) -> sparse.csr_matrix:
        """residents x rows indicator: ``groups @ per_row`` sums each resident's rows (scipy's sparse
        product beat ``np.add.reduceat`` (25x) and ``np.bincount`` (3x) at 60 gradient columns)."""
        import scipy.sparse as sparse

        n = len(self.resident)
        return sparse.csr_matrix((np.ones(n), (self.resident, np.arange(n))), shape=(self.residents, n))


def encode(frame: pd.DataFrame, resident: pd.Series, spec: ModelSpec, contract: Contract,
           plan: ModelPlan) -> Design:
    """Encode features with public, contract-derived scaling; rows with a missing outcome are dropped."""
    import pandas as pd

    outcome = frame[spec.outcome]
    keep = outcome.notna().to_numpy()
    frame, outcome, resident = frame[keep], outcome[keep], resident[keep]
    columns = []
    scaling = dict(plan.scaling)   # public, from the contract: no privacy cost
    for name in spec.features:
        column = contract.column(name)
        values = frame[name]
        if name in (spec.categorical or ()):   # one-hot over the contract's range; nulls and outliers in none
            levels = values.astype("float64").to_numpy()
            columns += [(levels == v).astype(float) for v in column_domain(column)]
        elif column.type in ("integer", "number"):
            lo, hi, _ = scaling[name]
            scaled = ((values.astype(float) - lo) / (hi - lo if hi > lo else 1.0)).clip(0.0, 1.0)
            columns.append(scaled.fillna(0.0).to_numpy())
        elif column.type == "boolean":
            columns.append(values.astype("float64").fillna(0.0).to_numpy())
        else:
            assert column.categories is not None
            text = values.astype(object)
            columns += [(text == c).to_numpy(dtype=float) for c in column.categories]
    columns.append(np.ones(len(frame)))
    x = np.column_stack(columns)
    if spec.positive is not None:
        y = outcome.astype(str).isin(spec.positive).to_numpy().astype(np.int64)
    else:
        lookup = {c: i for i, c in enumerate(plan.classes)}
        y = outcome.astype(str).map(lookup).to_numpy()
        known = ~pd.isna(y)
        x, y, resident = x[known], y[known].astype(np.int64), resident[known]
    ids, uniques = pd.factorize(resident)
    return Design(x=x, y=y, resident=ids, residents=len(uniques))


def predict_proba(params: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Class probabilities; params has one row per non-reference class."""
    logits = np.hstack([np.zeros((len(x), 1)), x @ params.T])
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


def _residuals(params: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """rows x (K-1): predicted probability minus indicator, for each non-reference class."""
    logits: np.ndarray = x @ params.T
    p: np.ndarray
    if params.shape[0] == 1:                  # binary: the logistic function, stable for any logit
        p = 0.5 * (1.0 + np.tanh(0.5 * logits))
        p[:, 0] -= y
        return p
    top = np.maximum(logits.max(axis=1, keepdims=True), 0.0)   # the reference class has logit 0
    p = np.exp(logits - top)
    p /= np.exp(-top) + p.sum(axis=1, keepdims=True)
    rows = np.flatnonzero(y > 0)
    p[rows, y[rows] - 1] -= 1.0
    return p


def _clipped_gradient_sum(design: Design, groups: sparse.csr_matrix | None, params: np.ndarray,
                          clipping_norm: float) -> np.ndarray:
    """Sum over residents of each resident's log-loss gradient clipped to ``clipping_norm``;
    ``groups`` is :attr:`Design.groups`, or None when every resident has one row."""
    residual = _residuals(params, design.x, design.y)
    if residual.shape[1] == 1:
        per_row = residual * design.x
    else:
        per_row = (residual[:, :, None] * design.x[:, None, :]).reshape(len(residual), -1)
    per_resident = per_row if groups is None else np.asarray(groups @ per_row)
    norms = np.sqrt(np.einsum("ij,ij->i", per_resident, per_resident))
    scale = np.minimum(1.0, clipping_norm / np.maximum(norms, 1e-12))
    total: np.ndarray = (scale @ per_resident).reshape(params.shape)
    return total


def local_training(design: Design, params: np.ndarray, spec: ModelSpec, plan: ModelPlan,
                   noisy_residents: float) -> np.ndarray:
    """``local_steps`` noisy gradient steps from ``params``; returns the new parameters."""
    denominator = max(noisy_residents, 1.0)
    groups = None if design.residents == len(design.resident) else design.groups
    for _ in range(spec.local_steps):
        exact = _clipped_gradient_sum(design, groups, params, plan.clipping_norm)
        noisy_sum = gaussian_release(exact, plan.noise_scale)
        params = params - spec.learning_rate * noisy_sum / denominator
    return params


def newton_statistics(design: Design, params: np.ndarray, clipping_norm: float,
                      curvature: bool) -> tuple[np.ndarray, np.ndarray | None, float]:
    """A Newton round's exact statistics at ``params``: the sum of each resident's clipped gradient; (when
    ``curvature``) the summed curvature ``sum_rows (diag(p) - p p^T) (x) x x^T`` of the log loss; and that
    curvature's trace. The caller adds the noise. The curvature needs no clipping: one resident's share is
    bounded by the contract's rows per resident and the encoded features' bounds
    (:func:`federation.privacy.plan_study`)."""
    groups = None if design.residents == len(design.resident) else design.groups
    gradient = _clipped_gradient_sum(design, groups, params, clipping_norm)
    x = design.x
    logits: np.ndarray = x @ params.T
    squared_norms = np.einsum("ij,ij->i", x, x)
    if params.shape[0] == 1:
        p = 0.5 * (1.0 + np.tanh(0.5 * logits[:, 0]))
        weight = p * (1.0 - p)
        trace = float(weight @ squared_norms)
        if not curvature:
            return gradient, None, trace
        hessian: np.ndarray = (x * weight[:, None]).T @ x
        return gradient, hessian, trace
    top = np.maximum(logits.max(axis=1, keepdims=True), 0.0)
    probabilities = np.exp(logits - top)
    probabilities /= np.exp(-top) + probabilities.sum(axis=1, keepdims=True)
    trace = float((probabilities * (1.0 - probabilities)).sum(axis=1) @ squared_norms)
    if not curvature:
        return gradient, None, trace
    k, d = params.shape
    hessian = np.zeros((k * d, k * d))
    for a in range(k):
        for b in range(a, k):
            weight = probabilities[:, a] * ((a == b) - probabilities[:, b])
            block = (x * weight[:, None]).T @ x
            hessian[a * d:(a + 1) * d, b * d:(b + 1) * d] = block
            hessian[b * d:(b + 1) * d, a * d:(a + 1) * d] = block.T
    return gradient, hessian, trace


def evaluation_statistics(design: Design, params: np.ndarray, bins: int, prediction_weight: float = 0.5,
                          curvature_weight: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Exact score histograms over equal-width logit bins on :data:`LOGIT_RANGE` — row 0: rows with outcome 0,
    row 1: with outcome 1, row 2: the sum of the predicted probabilities, times ``prediction_weight``, and with a
    ``curvature_weight``, one row per encoded feature: the sum of p(1-p)·x, times that weight (how the bin's
    predicted rate moves with the parameters) — and the Fisher information sum_rows p(1-p) x x^T at ``params``,
    for a binary model. A row moves the histogram rows by at most sqrt(1 + prediction_weight² +
    (curvature_weight·|x|/4)²) in L2. The caller adds the noise."""
    logit = design.x @ params[0]
    p = 1.0 / (1.0 + np.exp(-logit))
    low, high = LOGIT_RANGE
    which = np.clip(((logit - low) / (high - low) * bins).astype(np.int64), 0, bins - 1)
    curvature_rows = design.x.shape[1] if curvature_weight > 0 else 0
    histogram = np.zeros((3 + curvature_rows, bins))
    np.add.at(histogram, (design.y, which), 1.0)
    np.add.at(histogram, (np.full(len(which), 2), which), prediction_weight * p)
    weighted = design.x * (p * (1 - p))[:, None]
    if curvature_rows:
        curvature = np.zeros((bins, curvature_rows))
        np.add.at(curvature, which, curvature_weight * weighted)
        histogram[3:] = curvature.T
    fisher: np.ndarray = weighted.T @ design.x
    return histogram, fisher


def newton_fit_in_process(design: Design, model: ModelPlan, noisy: bool = True) -> NewtonSolver:
    """The Newton rounds one node and the ServerApp run, in one process, for tests and benchmarks: each release
    with the plan's noise (OpenDP's), or — ``noisy=False``, a reference the federation never runs — without any.
    The solver holds the estimate (:meth:`NewtonSolver.estimate`) and its covariances."""
    def release(values: np.ndarray, scale: float) -> np.ndarray:
        return gaussian_release(values, scale) if noisy else values

    solver = NewtonSolver((len(model.classes) - 1, len(model.features)), model.noise_scale,
                          model.hessian_noise_scale if noisy else 0.0, feature_columns(model.features))
    params = np.zeros(solver.shape)
    for round_ in range(1, model.rounds + 1):
        gradient, hessian, trace = newton_statistics(design, params, model.clipping_norm,
                                                     round_ in model.hessian_rounds)
        if hessian is not None:
            solver.update_curvature(release(upper_triangle(hessian), model.hessian_noise_scale), 1)
        params = solver.step(params, release(gradient, model.noise_scale), 1,
                             float(release(np.array([trace]), model.trace_noise_scale)[0]))
    return solver
