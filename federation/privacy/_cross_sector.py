"""Noise and cost of a cross-sector count study: which counts each dataset's residents can change, how
much noise each party adds, and the ρ each dataset is charged.

What is released (``F`` factors in all, ``P`` pairs at most, every count over the cohort):

    cohort size n                      added by the register            noise σ_n
    cases Σy                           added by the outcome node        σ_O1
    exposed Σx_j (per factor)          added by the factor's node       σ_L(d) = 3 σ_1(d)
    exposed cases Σx_j·y               computed under encryption:       σ_1(d) by the factor's node + σ_O1 by the outcome node
    pair both Σx_a·x_b                 within a node: that node         σ_2 (and, across nodes, + σ_O2 by the key holder)
    pair both cases Σx_a·x_b·y         the pair's second node + the outcome node    σ_2 + σ_O2

Who knows which noise. Every party knows the noise it added itself. A count computed under encryption
carries two noise terms: the computing node's (the outcome node, decrypting, sees the total before it
adds its own: the factor node's noise protects the factor data from it) and the outcome node's (the
computing node knows its own term: the outcome node's term protects the outcome from it). So each
dataset is charged, for every count its residents can change by one, ``1 / (2 v)`` with ``v`` the
variance of the noise its best-informed other party does not know:

- the outcome: ``K_O = 1 + F`` counts at σ_O1 (stage 1), ``P`` at σ_O2 (stage 2);
- a factor node ``d`` with ``F_d`` factors: ``F_d`` exposed counts at σ_L, ``F_d`` exposed-case counts at
  σ_1(d) and, as the pairs are chosen after stage 1, every pair in the worst case (its ``both`` and
  ``both cases``) at σ_2;
- the register: the linkage itself shows every participating node who is in the cohort (README, threat
  model), so its guarantee covers the coordinator and the public. They see every noise term of a count;
  the register is charged for the larger term alone (a sum of discrete Gaussians is not one, and
  post-processing the larger term is what OpenDP's map proves).

Calibration: stage 2 (pairs) gets ``PAIR_SHARE`` of the budget when there are pairs; each noise term is
set from its own party's constraint; if the register's total exceeds the budget every term is scaled
up together, and σ_n takes what is left (at least ``COHORT_SHARE``). Every ρ is OpenDP's (discrete
Gaussian, composed); the noise is drawn by OpenDP on the nodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from common.errors import UsageError
from federation.privacy._accounting import integer_gaussian_rho, integer_gaussian_vector_rho
from federation.spec import CrossSectorSpec
from schemas.contract import Contract

__all__ = ["COHORT_SHARE", "LOCAL_NOISE_FACTOR", "PAIR_SHARE", "Contribution", "CrossSectorNoise", "CrossSectorPlan",
           "calibrate_cross_sector", "move_cell", "plan_cross_sector"]

#: share of the budget spent on the pairs (stage 2), when the study has pairs
PAIR_SHARE = 0.3
#: exposed counts (large, and entering the ranking only through Σx·cases/n) carry this times the noise of
#: the exposed-case counts: a ninth of the budget per count
LOCAL_NOISE_FACTOR = 3.0
#: the least share of the register's budget left for the cohort size
COHORT_SHARE = 0.03


@dataclass(frozen=True)
class Contribution:
    """What one resident can add to the counts a source releases (one count per column, of each kind)."""

    columns: int
    #: ``None``: each count by at most 1, independently (0/1 indicators: L2² ≤ columns); otherwise a bound on the
    #: L2 norm of one resident's additions over all columns (moves between states: rows per resident − 1)
    joint_bound: int | None = None
    #: the exposed (local) counts carry this times the noise of the encrypted ones
    local_factor: float = LOCAL_NOISE_FACTOR

    @property
    def weight(self) -> float:
        """L2² of one resident's contribution: what the noise must cover."""
        return float(self.columns if self.joint_bound is None else self.joint_bound**2)

    def rho(self, scale: float) -> float:
        """ρ of this source's counts of one kind released with noise ``scale`` (OpenDP)."""
        if self.joint_bound is None:
            return integer_gaussian_rho(scale, self.columns)
        return integer_gaussian_vector_rho(scale, self.columns, self.joint_bound)


@dataclass(frozen=True)
class CrossSectorNoise:
    """Every noise scale of a cross-sector study and the ρ each dataset is charged (exact, by OpenDP)."""

    cohort: float
    outcome_stage1: float
    outcome_stage2: float
    #: per factor dataset: the exposed-case term σ_1(d) (exposed counts: its local factor × this)
    factor_stage1: dict[str, float]
    #: every factor node's term on pair counts
    factor_stage2: float
    rho: dict[str, float]
    #: per dataset, how many released counts one resident can change
    counts: dict[str, int]
    local_factor: dict[str, float] = field(default_factory=dict)

    def local(self, dataset: str) -> float:
        return self.local_factor.get(dataset, LOCAL_NOISE_FACTOR) * self.factor_stage1[dataset]


def calibrate_cross_sector(rho: float, cohort: str, outcome: str, sources: dict[str, Contribution],
                           pairs: int) -> CrossSectorNoise:
    """Noise scales so that no dataset is charged more than ``rho``; ``sources`` maps factor dataset -> contribution."""
    total = sum(c.weight for c in sources.values())
    stage1 = rho * (1 - PAIR_SHARE) if pairs else rho
    stage2 = rho - stage1
    outcome1 = math.sqrt((1 + total) / (2 * stage1))
    outcome2 = math.sqrt(pairs / (2 * stage2)) if pairs else 0.0
    factor1 = {d: math.sqrt(c.weight * (1 + 1 / c.local_factor**2) / (2 * stage1)) for d, c in sources.items()}
    factor2 = math.sqrt(2 * pairs / (2 * stage2)) if pairs else 0.0
    scale = 1.0
    for _ in range(60):   # the register's constraint: scale every term up together until it fits
        found = _charges(scale, cohort, outcome, sources, pairs, outcome1, outcome2, factor1, factor2, cohort_sd=None)
        if found[cohort] <= rho * (1 - COHORT_SHARE):
            break
        scale *= 1.02
    left = rho - found[cohort]
    cohort_sd = math.sqrt(1 / (2 * left))
    while integer_gaussian_rho(cohort_sd) + found[cohort] > rho:
        cohort_sd *= 1.001
    charges = _charges(scale, cohort, outcome, sources, pairs, outcome1, outcome2, factor1, factor2, cohort_sd)
    columns = sum(c.columns for c in sources.values())
    counts = {cohort: 2 + 2 * columns + 2 * pairs, outcome: 1 + columns + pairs,
              **{d: 2 * c.columns + 2 * pairs for d, c in sources.items()}}
    return CrossSectorNoise(cohort=cohort_sd, outcome_stage1=outcome1 * scale, outcome_stage2=outcome2 * scale,
                            factor_stage1={d: s * scale for d, s in factor1.items()}, factor_stage2=factor2 * scale,
                            rho=charges, counts=counts, local_factor={d: c.local_factor for d, c in sources.items()})


def _charges(scale: float, cohort: str, outcome: str, sources: dict[str, Contribution], pairs: int, outcome1: float,
             outcome2: float, factor1: dict[str, float], factor2: float, cohort_sd: float | None) -> dict[str, float]:
    o1, o2, f2 = outcome1 * scale, outcome2 * scale, factor2 * scale
    charged = {outcome: integer_gaussian_rho(o1) + sum(c.rho(o1) for c in sources.values())
               + (integer_gaussian_rho(o2, pairs) if pairs else 0.0)}
    register = integer_gaussian_rho(o1) if cohort_sd is None else integer_gaussian_rho(o1) + integer_gaussian_rho(cohort_sd)
    for dataset, contribution in sources.items():
        s1 = factor1[dataset] * scale
        local = contribution.local_factor * s1
        charged[dataset] = (contribution.rho(local) + contribution.rho(s1)
                            + (integer_gaussian_rho(f2, 2 * pairs) if pairs else 0.0))
        # the public sees both terms of an encrypted count; the larger one is the register's charge
        register += contribution.rho(local) + contribution.rho(max(s1, o1))
    if pairs:
        # worst case for the register: a pair within one node has a single term on its "both" count
        register += integer_gaussian_rho(f2, pairs) + integer_gaussian_rho(max(f2, o2), pairs)
    charged[cohort] = register
    return charged


@dataclass(frozen=True)
class CrossSectorPlan:
    """A cross-sector study resolved against its contracts: the factors of each node, the pairs' cap, the noise."""

    #: factor dataset -> its released columns, in order (0/1 factors, or ``from->to`` cells of a moves source)
    factors: dict[str, tuple[str, ...]]
    max_pairs: int
    noise: CrossSectorNoise
    #: moves sources: dataset -> the states, in the order the cells are laid out (``from`` major)
    states: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def holder(self) -> dict[str, str]:
        """factor -> the dataset that holds it (0/1 factors only: these can be paired)"""
        return {f: d for d, names in self.factors.items() if d not in self.states for f in names}


def move_cell(start: int, end: int) -> str:
    return f"{start}->{end}"


def plan_cross_sector(spec: CrossSectorSpec, contracts: dict[str, Contract], rho: float) -> CrossSectorPlan:
    """Check every dataset's role against its contract and fix the noise; UsageError names the first problem."""
    cohort = contracts[spec.cohort.dataset]
    birth = cohort.column(spec.cohort.birth_column) if spec.cohort.birth_column in cohort.column_names else None
    if birth is None or birth.type != "date":
        raise UsageError(f"the cohort's contract {cohort.label} has no date column {spec.cohort.birth_column!r}")
    if spec.cohort.min_age > spec.cohort.max_age:
        raise UsageError("the cohort's min_age is above its max_age")
    outcome = contracts[spec.outcome.dataset]
    if spec.outcome.column is not None and spec.outcome.column not in {
            c.name for c in outcome.expanded_columns if c.type == "boolean"}:
        raise UsageError(f"{spec.outcome.column!r} is not a boolean column of contract {outcome.label}")
    factors: dict[str, tuple[str, ...]] = {}
    states: dict[str, tuple[int, ...]] = {}
    sources: dict[str, Contribution] = {}
    for source in spec.factors:
        contract = contracts[source.dataset]
        if source.moves is not None:
            states[source.dataset] = _states(contract, source.moves.time, source.moves.state)
            factors[source.dataset] = tuple(move_cell(a, b) for a in states[source.dataset] for b in states[source.dataset])
            sources[source.dataset] = Contribution(len(factors[source.dataset]),
                                                   joint_bound=max(contract.max_rows_per_resident - 1, 1),
                                                   local_factor=1.0)
            continue
        indicators = [c.name for c in contract.expanded_columns if c.type == "boolean" and c.privacy != "direct_identifier"]
        chosen = source.columns or tuple(c for c in indicators if "_rf_" in c)
        unknown = [c for c in chosen if c not in indicators]
        if unknown:
            raise UsageError(f"{unknown[0]!r} is not a 0/1 column of contract {contract.label}")
        if not chosen:
            raise UsageError(f"contract {contract.label} declares no risk-factor indicators; name the columns")
        if contract.max_rows_per_resident != 1:
            raise UsageError(f"a factor dataset must hold one row per resident; {contract.label} allows "
                             f"{contract.max_rows_per_resident}")
        factors[source.dataset] = tuple(chosen)
        sources[source.dataset] = Contribution(len(chosen))
    names = [f for d, chosen in factors.items() if d not in states for f in chosen]
    if len(set(names)) != len(names):
        raise UsageError("a factor is named by two datasets")
    for a, b in spec.pairs.listed:
        if a not in names or b not in names or a == b:
            raise UsageError(f"the listed pair ({a}, {b}) is not two of the study's 0/1 factors")
    pairs = spec.pairs.max_pairs if names and (spec.pairs.listed or spec.pairs.screen_top >= 2) else 0
    if len(spec.pairs.listed) > pairs:
        raise UsageError(f"{len(spec.pairs.listed)} pairs are listed but max_pairs is {pairs}")
    noise = calibrate_cross_sector(rho, spec.cohort.dataset, spec.outcome.dataset, sources, pairs)
    return CrossSectorPlan(factors=factors, max_pairs=pairs, noise=noise, states=states)


def _states(contract: Contract, time: str, state: str) -> tuple[int, ...]:
    names = {c.name: c for c in contract.expanded_columns}
    if time not in names or names[time].type not in ("integer", "date"):
        raise UsageError(f"time column {time!r} of contract {contract.label} must be an integer or a date")
    column = names.get(state)
    if column is None or column.type != "integer" or column.range is None:
        raise UsageError(f"state column {state!r} of contract {contract.label} must be an integer with a range")
    low, high = int(column.range[0]), int(column.range[1])  # type: ignore[arg-type]
    if high - low + 1 > 30:
        raise UsageError(f"state column {state!r} has {high - low + 1} states; at most 30 are tabulated")
    return tuple(range(low, high + 1))
