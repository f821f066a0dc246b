"""Server-side post-processing of private releases, and the result JSON (fields in DESIGN.md).

Everything here works on noisy values only: sums of noisy counts, averages of noisy updates.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from federation.privacy import StudyPlan
from federation.projection import Z95, matrix_intervals, ordinal_shrinkage_intervals, project
from federation.spec import StudySpec
from federation.tasks.newton import NewtonSolver

__all__ = ["evaluation_outputs", "model_outputs", "newton_intervals", "private_evaluation", "table_outputs",
           "write_result"]


def table_outputs(spec: StudySpec, plan: StudyPlan, counts: dict[str, np.ndarray]) -> dict[str, Any]:
    table = plan.table
    assert table is not None and spec.table is not None
    total = np.sum(list(counts.values()), axis=0)
    noise_sd = table.noise_scale * math.sqrt(len(counts))   # independent noise from each node
    cells = [dict(zip(table.columns, cell)) | {"count": float(c)} for cell, c in zip(table.cells, total)]
    outputs: dict[str, Any] = {
        "kind": "table",
        "columns": list(table.columns),
        "cells": cells,
        "noise_sd_per_cell": noise_sd,
        "per_dataset_noise_sd": table.noise_scale,
    }
    if spec.table.transitions is not None:
        outputs.update(_transition_outputs(spec, plan, total, noise_sd))
    return outputs


def _transition_counts(spec: StudySpec, plan: StudyPlan, total: np.ndarray) -> tuple[list[Any], dict[str, np.ndarray]]:
    """The summed noisy counts as one k×k matrix (from, to) per ``by`` value (or ``all``)."""
    table = plan.table
    assert table is not None and spec.table is not None and spec.table.transitions is not None
    by = spec.table.transitions.by
    states = sorted({cell[-1] for cell in table.cells})
    position = {s: i for i, s in enumerate(states)}
    groups = sorted({cell[0] for cell in table.cells}, key=str) if by else ["all"]
    matrices: dict[str, np.ndarray] = {str(g): np.zeros((len(states), len(states))) for g in groups}
    for cell, count in zip(table.cells, total):
        matrices[str(cell[0]) if by else "all"][position[cell[-2]], position[cell[-1]]] = float(count)
    return states, matrices


_ESTIMATORS = {
    "ordinal_shrinkage": "empirical Bayes: each row is a mix of its own noisy counts and the moves up and down the "
                         "segments pooled over all rows, weighted by how much data the row has against the noise",
    "raw": "each row's noisy counts, negatives set to zero, divided by the row's total",
}


def _transition_outputs(spec: StudySpec, plan: StudyPlan, total: np.ndarray, noise_sd: float) -> dict[str, Any]:
    """Row-normalised matrices (negatives clipped) with 95 % intervals, and the projection ahead."""
    assert spec.table is not None and spec.table.transitions is not None
    transitions = spec.table.transitions
    states, counts = _transition_counts(spec, plan, total)
    estimate = ordinal_shrinkage_intervals if transitions.estimator == "ordinal_shrinkage" else matrix_intervals
    intervals = {group: estimate(matrix, noise_sd) for group, matrix in counts.items()}
    return {
        "states": states,
        "estimator": _ESTIMATORS[transitions.estimator],
        "transition_matrices": {group: found["probabilities"] for group, found in intervals.items()},
        "transition_intervals": intervals,
        "projection": project(counts, noise_sd, transitions.horizon_years, None, transitions.population),
    }


def model_outputs(spec: StudySpec, plan: StudyPlan, params: np.ndarray, weights: dict[str, float]) -> dict[str, Any]:
    model = plan.model
    assert model is not None and spec.model is not None
    coefficients = {
        cls: dict(zip(model.features, map(float, row))) for cls, row in zip(model.classes[1:], params)
    }
    outputs: dict[str, Any] = {
        "kind": "logistic_regression" if len(model.classes) == 2 else "multinomial_logistic_regression",
        "outcome": spec.model.outcome,
        "classes": list(model.classes),
        "reference_class": model.classes[0],
        "features": list(model.features),
        "feature_scaling": "numbers scaled to [0, 1] by the contract's plausible range (warn_range, else its "
                           "range) and clipped; booleans 0/1; categories one-hot; coefficients are per that scale",
        "scaling_bounds": {name: {"low": lo, "high": hi, "from": source} for name, (lo, hi, source) in model.scaling},
        "coefficients": coefficients,
        "parameters": params.tolist(),
        "optimizer": model.optimizer,
    }
    if weights:   # gradient descent weights its nodes by their noisy resident counts; Newton needs no count
        outputs["noisy_residents"] = weights
    if len(model.classes) == 2:
        outputs["odds_ratios"] = {f: math.exp(v) for f, v in coefficients[model.classes[1]].items()}
    return outputs


def private_evaluation(plan: StudyPlan, histogram: np.ndarray, nodes: int,
                       parameter_covariance: np.ndarray | None = None) -> dict[str, Any]:
    """The ``evaluation`` section from the summed noisy score histograms of ``nodes`` nodes; with the covariance
    of the DP noise in the parameters, the calibration intervals include it."""
    from federation.evaluation import private_evaluation as evaluate

    assert plan.model is not None and plan.model.evaluation is not None
    e = plan.model.evaluation
    return {"evaluation": evaluate(histogram, e.histogram_noise_scale * math.sqrt(nodes), e.prediction_weight,
                                   e.curvature_weight, parameter_covariance)}


def newton_intervals(plan: StudyPlan, params: np.ndarray, solver: NewtonSolver) -> dict[str, Any]:
    """Standard errors and approximate 95 % intervals of a Newton fit: sampling (the inverse of the noisy
    curvature) plus the DP noise the averaged iterates keep (:meth:`NewtonSolver.covariance`)."""
    model = plan.model
    assert model is not None
    sampling, noise = solver.covariance()
    errors = np.sqrt(np.clip(np.diag(sampling + noise), 0, None)).reshape(params.shape)
    noise_only = np.sqrt(np.clip(np.diag(noise), 0, None)).reshape(params.shape)
    out: dict[str, Any] = {
        "standard_errors": {c: dict(zip(model.features, map(float, e))) for c, e in zip(model.classes[1:], errors)},
        "standard_errors_dp_noise": {c: dict(zip(model.features, map(float, e)))
                                     for c, e in zip(model.classes[1:], noise_only)},
        "coefficient_intervals": {
            c: {f: [float(v - Z95 * e), float(v + Z95 * e)] for f, v, e in zip(model.features, row, err)}
            for c, row, err in zip(model.classes[1:], params, errors)},
        "interval_note": "approximate: the inverse of the noisy curvature (sampling) plus the covariance the DP "
                         "noise leaves in the mean of the last iterates (a stationary autoregression)",
    }
    if len(model.classes) == 2:
        out["odds_ratio_intervals"] = {f: [math.exp(lo), math.exp(hi)]
                                       for f, (lo, hi) in out["coefficient_intervals"][model.classes[1]].items()}
    return out


def evaluation_outputs(spec: StudySpec, plan: StudyPlan, params: np.ndarray, histogram: np.ndarray,
                       fisher: np.ndarray, residents: float, nodes: int) -> dict[str, Any]:
    """Gradient descent: private metrics (:func:`private_evaluation`) and coefficient intervals from the summed
    noisy histograms and Fisher information.

    Coefficient covariance is the sampling part, the inverse Fisher information, plus the part the DP noise of
    gradient descent leaves in the parameters: the stationary covariance of θ ← θ − (lr/N)(∇ + ξ), with ξ the
    sum of the nodes' noise (a discrete Lyapunov equation). Both are approximations, stated as such.
    """
    from scipy.linalg import solve_discrete_lyapunov

    model = plan.model
    assert model is not None and spec.model is not None
    symmetric = (fisher + fisher.T) / 2
    values, vectors = np.linalg.eigh(symmetric)
    floor = max(float(values.max()) * 1e-6, 1e-6)
    information = (vectors * np.maximum(values, floor)) @ vectors.T
    sampling = np.linalg.inv(information)
    n = max(residents, 1.0)
    a = np.eye(len(information)) - spec.model.learning_rate / n * information
    q = (spec.model.learning_rate / n) ** 2 * nodes * model.noise_scale**2 * np.eye(len(information))
    stable = bool(np.max(np.abs(np.linalg.eigvals(a))) < 1)
    dp_part = solve_discrete_lyapunov(a, q) if stable else np.zeros_like(sampling)
    evaluation = private_evaluation(plan, histogram, nodes, dp_part if stable else None)
    errors = np.sqrt(np.clip(np.diag(sampling + dp_part), 0, None))
    values_ = params[0]
    cls = model.classes[1]
    intervals = {cls: {f: [float(v - Z95 * e), float(v + Z95 * e)] for f, v, e in zip(model.features, values_, errors)}}
    return {
        "standard_errors": {cls: dict(zip(model.features, map(float, errors)))},
        "coefficient_intervals": intervals,
        "odds_ratio_intervals": {f: [math.exp(lo), math.exp(hi)] for f, (lo, hi) in intervals[cls].items()},
        "interval_note": "approximate: inverse noisy Fisher information plus the stationary DP-GD noise"
                         + ("" if stable else "; DP part omitted: the step size is too large for the approximation"),
        **evaluation,
    }


def write_result(results_dir: Path, run_id: int, result: dict[str, Any], name: str = "result.json") -> Path:
    """Atomically write ``<results_dir>/<run_id>/result.json`` (or ``progress.json`` while running)."""
    directory = results_dir / str(run_id)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    temporary = directory / f"{name}.tmp"
    temporary.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    os.replace(temporary, path)
    return path
