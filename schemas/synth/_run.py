"""Build whole synthetic municipalities from known parameters and write them with their truth."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from schemas.catalog import ContractCatalog
from schemas.synth import _health, _risk, _sectors
from schemas.synth._conform import add_messiness, to_table, write_parquet
from schemas.synth._population import REFERENCE_DATE, Residents, make_residents, population_register

__all__ = ["SECTORS", "SynthConfig", "SynthResult", "synthesize"]

#: the silos one municipality gets, each written as <municipality>/<sector>.parquet
SECTORS = ("population_register", "health_care", "social_services", "child_welfare",
           "education", "employment", "child_health")
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class SynthConfig:
    out: Path
    residents: int = 300_000
    municipalities: tuple[str, ...] = ("espoo",)
    seed: int = 0
    #: 1.0 = the default controlled rates of nulls and outliers; 0 = perfectly clean extracts
    messiness: float = 1.0


@dataclass
class SynthResult:
    truth_path: Path
    files: dict[str, dict[str, Path]] = field(default_factory=dict)
    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0


def synthesize(config: SynthConfig, registry: ContractCatalog | None = None) -> SynthResult:
    """Generate every municipality's silos and ``truth.json`` under ``config.out``."""
    started = time.perf_counter()
    registry = registry or ContractCatalog()
    contracts = {sector: registry.get(sector) for sector in SECTORS}
    seeds = np.random.SeedSequence(config.seed).spawn(len(config.municipalities) + 1)
    truth_rng = np.random.default_rng(seeds[0])

    matrices = _health.transition_matrices(truth_rng)
    factor_cols = {s: _risk.factor_columns(contracts[s]) for s in _risk.FACTOR_SECTORS}
    factor_params = {s: _risk.factor_parameters(cols, truth_rng) for s, cols in factor_cols.items()}
    all_factors = [c for s in _risk.FACTOR_SECTORS for c in factor_cols[s]]
    prevalence = {c: p["prevalence_at_mean_vulnerability"] for s in factor_params.values() for c, p in s.items()}
    model = _risk.choose_model(all_factors, prevalence, truth_rng)

    drafts = []
    taken: set[str] = set()  # identity codes are unique nationally, across municipalities
    for name, seed in zip(config.municipalities, seeds[1:]):
        rng = np.random.default_rng(seed)
        people = make_residents(name, config.residents, rng, taken)
        taken.update(people.person_id.tolist())
        frames, child_x, children = _draw_sectors(people, factor_params, rng, matrices)
        drafts.append((name, rng, people, frames, child_x, children))

    # the intercept is a model parameter: fixed once, from the first municipality's children
    first_eta = _risk.linear_predictor(model, drafts[0][4])
    model.intercept = _risk.calibrate_intercept(first_eta, _risk.TARGET_RATE)

    result = SynthResult(truth_path=config.out / "truth.json")
    messiness: dict[str, dict[str, dict[str, dict[str, int]]]] = {}
    outcome_rates: dict[str, float] = {}
    for name, rng, people, frames, child_x, children in drafts:
        eta = model.intercept + _risk.linear_predictor(model, child_x)
        outcome = rng.random(len(children)) < 1.0 / (1.0 + np.exp(-eta))
        outcome_rates[name] = round(float(outcome.mean()), 6)
        frames["child_welfare"] = _risk.child_welfare(people, children[outcome], rng)
        result.files[name], result.rows[name], messiness[name] = {}, {}, {}
        for sector in SECTORS:
            frame = frames[sector]
            counts = add_messiness(frame, contracts[sector], config.messiness, rng)
            if counts:
                messiness[name][sector] = counts
            path = config.out / name / f"{sector}.parquet"
            write_parquet(to_table(frame, contracts[sector]), path)
            result.files[name][sector] = path
            result.rows[name][sector] = len(frame)

    truth = {
        "generator": {"name": "tillit synth", "version": GENERATOR_VERSION},
        "seed": config.seed,
        "residents_per_municipality": config.residents,
        "municipalities": list(config.municipalities),
        "reference_date": REFERENCE_DATE.isoformat(),
        "contracts": {s: c.version for s, c in contracts.items()},
        "health": {
            "segments": _health.SEGMENTS,
            "years": list(_health.YEARS),
            "service_statuses": list(_health.SERVICE_STATUSES),
            "model": "segment[y+1] ~ transition_matrices[service_status[y]][segment[y]-1]",
            "transition_matrices": {s: m.tolist() for s, m in matrices.items()},
        },
        "child_welfare": {
            "outcome": "child (aged 0-17 on the reference date) appears in child_welfare.parquet",
            "outcome_year": _risk.OUTCOME_YEAR,
            "model": "logit P = intercept + sum beta_j x_j + sum gamma_jk x_j x_k; x_j = 0 where the sector does not serve the child",
            "intercept": model.intercept,
            "coefficients": model.coefficients,
            "interactions": [{"factors": [a, b], "coefficient": g} for a, b, g in model.interactions],
            "ranking": model.ranking(),
            "factor_sectors": {s: len(c) for s, c in factor_cols.items()},
            "factor_parameters": {c: p for s in _risk.FACTOR_SECTORS for c, p in factor_params[s].items()},
            "observed_rate": outcome_rates,
        },
        "messiness": {"level": config.messiness, "counts": messiness},
        "rows": result.rows,
    }
    config.out.mkdir(parents=True, exist_ok=True)
    result.truth_path.write_text(json.dumps(truth, indent=1), encoding="utf-8")
    result.seconds = time.perf_counter() - started
    return result


def _draw_sectors(
    people: Residents,
    factor_params: dict[str, dict[str, dict[str, float]]],
    rng: np.random.Generator,
    matrices: dict[str, np.ndarray],
) -> tuple[dict[str, pd.DataFrame], np.ndarray, np.ndarray]:
    """Every sector's frame, plus the children's full 0/1 factor matrix (for the outcome)."""
    frames = {
        "population_register": population_register(people),
        "health_care": _health.health_care(people, matrices, rng),
    }
    builders = {"social_services": _sectors.social_services, "education": _sectors.education,
                "employment": _sectors.employment, "child_health": _sectors.child_health}
    children = np.flatnonzero(people.age < 18)
    position = np.full(len(people), -1)
    position[children] = np.arange(len(children))
    blocks = []
    for sector in _risk.FACTOR_SECTORS:
        rows = _risk.members(sector, people, rng)
        frame = builders[sector](people, rows, rng)
        params = factor_params[sector]
        x = _risk.draw_factors(params, rows, people, rng)
        factors = pd.DataFrame(x, columns=list(params), index=frame.index)
        frames[sector] = pd.concat([frame, factors], axis=1)
        block = np.zeros((len(children), len(params)), dtype=bool)
        is_child = position[rows] >= 0
        block[position[rows[is_child]]] = x[is_child]
        blocks.append(block)
    return frames, np.hstack(blocks), children
