"""Yearly health segments 1-20 that move by known, service-dependent transition matrices.

Truth: ``segment[y+1] ~ P[service[y]][segment[y], :]``. Service status is chosen from the segment
and age (those in more need get more services), but given segment and service the move depends on
nothing else, so the empirical transition frequencies converge to ``P`` exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from schemas.synth._population import Residents

SEGMENTS = 20
SERVICE_STATUSES = ("none", "preventive", "home_care", "intensive")
YEARS = tuple(range(2019, 2025))

# Mean segment change per year and spread, by service: services slow the drift towards more need.
_DRIFT = {"none": 0.45, "preventive": 0.05, "home_care": 0.20, "intensive": -0.35}
_SPREAD = {"none": 0.9, "preventive": 0.8, "home_care": 1.0, "intensive": 1.3}


def transition_matrices(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Row-stochastic 20x20 matrices per service status, lightly perturbed by the seed."""
    idx = np.arange(SEGMENTS)
    matrices = {}
    for status in SERVICE_STATUSES:
        # those in high segments drift less (ceiling) and those in low ones rarely improve
        drift = _DRIFT[status] * (1.0 - idx / (2 * SEGMENTS))
        diff = idx[None, :] - idx[:, None] - drift[:, None]
        weights = np.exp(-0.5 * (diff / _SPREAD[status]) ** 2)
        weights *= rng.lognormal(0.0, 0.15, size=weights.shape)
        weights[weights < 1e-4] = 0.0
        matrices[status] = weights / weights.sum(axis=1, keepdims=True)
    return matrices


def _initial_segments(age: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    mean = 2.0 + 13.0 * (age / 100.0) ** 1.6
    raw = np.rint(mean + rng.normal(0.0, 2.2, size=age.shape))
    return np.clip(raw, 1, SEGMENTS).astype(np.int64)


def _service_status(segment: np.ndarray, age: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Index into SERVICE_STATUSES, from a multinomial logit on need and age."""
    s = segment / SEGMENTS
    old = (age >= 65).astype(float)
    scores = np.stack([
        np.zeros_like(s),                                 # none
        -2.0 + 3.0 * s - 4.0 * (s - 0.45) ** 2 * 4,       # preventive: mid segments
        -6.5 + 6.0 * s + 1.5 * old,                       # home care: high need, elderly
        -9.0 + 8.5 * s,                                   # intensive: highest need
    ], axis=1)
    p = np.exp(scores - scores.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return _categorical(p, rng)


def _categorical(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of a probability matrix (rows sum to 1)."""
    cum = np.cumsum(p, axis=1)
    u = rng.random(len(p)) * cum[:, -1]
    drawn: np.ndarray = np.minimum((u[:, None] > cum).sum(axis=1), p.shape[1] - 1)
    return drawn


def health_care(people: Residents, matrices: dict[str, np.ndarray], rng: np.random.Generator) -> pd.DataFrame:
    """One row per resident and year from the resident's birth year (or the first year) on."""
    birth_year = people.birth_date.dt.year.to_numpy()
    cum = np.stack([np.cumsum(matrices[s], axis=1) for s in SERVICE_STATUSES])
    age_now = people.age - (YEARS[-1] - YEARS[0])
    segment = _initial_segments(np.maximum(age_now, 0), rng)
    frames = []
    for year in YEARS:
        age = people.age - (YEARS[-1] - year)
        alive = birth_year <= year
        service = _service_status(segment, np.maximum(age, 0), rng)
        rows = np.flatnonzero(alive)
        seg = segment[rows]
        frames.append(pd.DataFrame({
            "person_id": people.person_id[rows],
            "year": year,
            "health_segment": seg,
            "service_status": np.array(SERVICE_STATUSES, dtype=object)[service[rows]],
            "primary_care_visits": rng.poisson(0.6 + 0.45 * seg),
            "specialist_visits": rng.poisson(0.1 + 0.18 * seg),
            "hospital_days": np.where(rng.random(len(rows)) < 0.02 + 0.02 * seg,
                                      1 + rng.geometric(1.0 / (2.0 + seg / 2.0)), 0),
        }))
        # move everyone (the unborn keep a placeholder that is never written)
        u = rng.random(len(segment))[:, None]
        row_cum = cum[service, segment - 1]
        segment = 1 + np.minimum((u * row_cum[:, -1:] > row_cum).sum(axis=1), SEGMENTS - 1)
    return pd.concat(frames, ignore_index=True)
