"""Build whole synthetic municipalities from known parameters and write them with their truth."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from schemas.catalog import ContractCatalog, contract_yaml
from schemas.contract import Contract
from schemas.identity import FORMAT_LABELS
from schemas.synth import _health, _risk, _sectors
from schemas.synth._conform import add_messiness, to_table, write_parquet
from schemas.synth._identity_codes import Country
from schemas.synth._population import REFERENCE_DATE, Residents, make_residents, population_register

__all__ = ["SECTORS", "SynthConfig", "SynthResult", "country_contracts", "synthesize"]

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
    #: whose identity codes the residents get; other than ``fi``, the contracts they follow are written too
    country: Country = "fi"


@dataclass
class SynthResult:
    truth_path: Path
    files: dict[str, dict[str, Path]] = field(default_factory=dict)
    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0
    #: where the contracts of a non-Finnish run were written (pass it as ``--contracts``); None for ``fi``
    contracts_dir: Path | None = None


def country_contracts(contracts: dict[str, Contract], country: Country) -> dict[str, Contract]:
    """The sector contracts with ``country``'s identity codes as their identifier: each stands in for the built-in
    contract of its name (``replaces_builtin``), so that studies, templates and datasets keep their names."""
    described = f"{FORMAT_LABELS[country]}; pseudonymised with the node's keyed hash before any check."
    adapted = {}
    for name, contract in contracts.items():
        columns = [c.model_dump() | ({"format": country, "description": described} if c.name == contract.identifier
                                      else {}) for c in contract.columns]
        adapted[name] = Contract.model_validate({**contract.model_dump(), "columns": columns, "replaces_builtin": True})
    return adapted


def synthesize(config: SynthConfig, registry: ContractCatalog | None = None) -> SynthResult:
    """Generate every municipality's silos and ``truth.json`` under ``config.out``."""
    started = time.perf_counter()
    registry = registry or ContractCatalog()
    contracts = {sector: registry.get(sector) for sector in SECTORS}
    if config.country != "fi":
        contracts = country_contracts(contracts, config.country)
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
        people = make_residents(name, config.residents, rng, taken, config.country)
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
        "country": config.country,
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
    if config.country != "fi":
        result.contracts_dir = _write_contracts(config.out / "contracts", contracts, config.country)
    result.truth_path.write_text(json.dumps(truth, indent=1), encoding="utf-8")
    result.seconds = time.perf_counter() - started
    return result


def _write_contracts(directory: Path, contracts: dict[str, Contract], country: Country) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, contract in contracts.items():
        note = (f"Written by 'tillit synth --country {country}': the built-in {name} contract with "
                f"{FORMAT_LABELS[country]}\nas its resident key. Pass this directory as --contracts (or in "
                "$TILLIT_CONTRACTS_PATH) to every command.")
        (directory / f"{name}.yaml").write_text(contract_yaml(contract, note), encoding="utf-8")
    return directory


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
