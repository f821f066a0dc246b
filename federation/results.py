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

__all__ = ["evaluation_outputs", "model_outputs", "table_outputs", "write_result"]


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
        "feature_scaling": "numbers scaled to [0, 1] by the contract's plausible range (else its range), clipped; categories one-hot",
        "coefficients": coefficients,
        "parameters": params.tolist(),
        "noisy_residents": weights,
    }
    if len(model.classes) == 2:
        outputs["odds_ratios"] = {f: math.exp(v) for f, v in coefficients[model.classes[1]].items()}
    return outputs


def evaluation_outputs(spec: StudySpec, plan: StudyPlan, params: np.ndarray, histogram: np.ndarray,
                       fisher: np.ndarray, residents: float, nodes: int) -> dict[str, Any]:
    """Private metrics and coefficient intervals from the summed noisy histograms and Fisher information.

    AUC and calibration come from the score histograms per outcome. Coefficient covariance is the
    sampling part, the inverse Fisher information, plus the part the DP noise of gradient descent
    leaves in the parameters: the stationary covariance of θ ← θ − (lr/N)(∇ + ξ), with ξ the sum
    of the nodes' noise (a discrete Lyapunov equation). Both are approximations, stated as such.
    """
    from scipy.linalg import solve_discrete_lyapunov

    model = plan.model
    assert model is not None and spec.model is not None
    negatives, positives = np.clip(histogram[0], 0, None), np.clip(histogram[1], 0, None)
    bins = len(negatives)
    above = np.concatenate([np.cumsum(positives[::-1])[::-1][1:], [0.0]])       # positives in higher bins
    p_total, n_total = positives.sum(), negatives.sum()
    auc = float((negatives * (above + 0.5 * positives)).sum() / (p_total * n_total)) if p_total and n_total else None
    from federation.tasks.logreg import LOGIT_RANGE

    logit_edges = np.linspace(*LOGIT_RANGE, bins + 1)
    centres = 1.0 / (1.0 + np.exp(-(logit_edges[:-1] + logit_edges[1:]) / 2))
    roc = [[float(negatives[b:].sum() / n_total), float(positives[b:].sum() / p_total)]
           for b in range(bins)] + [[0.0, 0.0]] if p_total and n_total else []
    # a bin's observed rate is shown only where its rows clearly outweigh the noise on its two counts
    assert model.evaluation is not None
    enough = max(50.0, 5 * model.evaluation.histogram_noise_scale * math.sqrt(2 * nodes))
    calibration = [{"predicted": float(centres[b]), "observed": float(positives[b] / total),
                    "noisy_rows": float(total)}
                   for b in range(bins) if (total := positives[b] + negatives[b]) >= enough]
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
    errors = np.sqrt(np.clip(np.diag(sampling + dp_part), 0, None))
    values_ = params[0]
    cls = model.classes[1]
    intervals = {cls: {f: [float(v - Z95 * e), float(v + Z95 * e)] for f, v, e in zip(model.features, values_, errors)}}
    return {
        "standard_errors": {cls: dict(zip(model.features, map(float, errors)))},
        "coefficient_intervals": intervals,
        "odds_ratio_intervals": {f: [math.exp(lo), math.exp(hi)] for f, (lo, hi) in intervals[cls].items()},
        "evaluation": {
            "auc": auc, "roc": roc, "calibration": calibration, "noisy_positive_rows": float(p_total),
            "noisy_negative_rows": float(n_total), "score_bins": bins,
            "note": "AUC and calibration on the training rows; intervals are approximate "
                    "(inverse noisy Fisher information plus the stationary DP-GD noise"
                    + ("" if stable else "; DP part omitted: the step size is too large for the approximation") + ")",
        },
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
