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

from federation.planning import matrix_intervals, project
from federation.privacy import StudyPlan
from federation.spec import StudySpec

__all__ = ["model_outputs", "table_outputs", "write_result"]


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


def _transition_outputs(spec: StudySpec, plan: StudyPlan, total: np.ndarray, noise_sd: float) -> dict[str, Any]:
    """Row-normalised matrices (negatives clipped) with 95 % intervals, and the projection ahead."""
    assert spec.table is not None and spec.table.transitions is not None
    transitions = spec.table.transitions
    states, counts = _transition_counts(spec, plan, total)
    intervals = {group: matrix_intervals(matrix, noise_sd) for group, matrix in counts.items()}
    return {
        "states": states,
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


def write_result(results_dir: Path, run_id: int, result: dict[str, Any], name: str = "result.json") -> Path:
    """Atomically write ``<results_dir>/<run_id>/result.json`` (or ``progress.json`` while running)."""
    directory = results_dir / str(run_id)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    temporary = directory / f"{name}.tmp"
    temporary.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    os.replace(temporary, path)
    return path
