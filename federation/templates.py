"""Study templates: what an analyst fills in, turned into a study spec the nodes can check.

A template names its parameters (typed, validated here) and builds a :class:`StudySpec`. Choices
the contract forbids — a direct identifier as outcome or feature, a column the contract does not
have — are refused before any cost is computed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common.errors import UsageError, describe_validation_error
from federation.spec import (
    CohortSpec, CrossSectorSpec, FactorSource, ModelSpec, MovesSpec, Optimizer, OutcomeSpec, PairsSpec, PrivacySpec,
    StudySpec, TableSpec, TransitionSpec,
)
from schemas import Contract, ContractCatalog

__all__ = ["TEMPLATES", "Template", "build_spec"]

_Task = Literal["dp_table", "dp_logreg", "cross_sector_counts"]


class _Common(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    epsilon: float = Field(default=1.0, ge=0.001, le=20)
    delta: float = Field(default=1e-6, ge=1e-12, lt=1e-2)


class TransitionParams(_Common):
    """Espoo project 1: moves between the 20 health segments from one year to the next, per service status."""

    municipalities: tuple[str, ...] = Field(min_length=1)
    contract: str = "health_care"
    time: str = "year"
    state: str = "health_segment"
    by: str | None = "service_status"
    horizon_years: int = Field(default=10, ge=1, le=30)
    population: int | None = Field(default=None, ge=1, le=100_000_000)
    estimator: Literal["ordinal_shrinkage", "raw"] = "ordinal_shrinkage"
    #: across sectors: the service status comes from another sector's silo (e.g. social_services) — whether a
    #: resident is its client (or, with ``by_column``, has that service); linked without pooling, one municipality
    by_sector: str | None = Field(default=None, pattern=r"^[a-z0-9_]{1,48}$")
    by_column: str | None = None


class TableParams(_Common):
    """Counts over the cross-tabulation of contract columns with small public domains."""

    contract: str
    municipalities: tuple[str, ...] = Field(min_length=1)
    group_by: tuple[str, ...] = Field(min_length=1, max_length=4)


class LogregParams(_Common):
    """Logistic regression of ``outcome`` on ``features``, for any contract: by the noisy Newton method unless
    DP gradient descent is asked for (``optimizer``, or — as before the choice existed — ``local_steps`` or
    ``learning_rate`` given). Newton needs no tuning: rounds, clipping and step sizes have working defaults."""

    contract: str
    municipalities: tuple[str, ...] = Field(min_length=1)
    outcome: str
    positive: tuple[str, ...] | None = None
    classes: tuple[str, ...] | None = None
    features: tuple[str, ...] = Field(min_length=1)
    #: integer features taken as categories (one-hot over the contract's range) rather than scaled numbers
    categorical: tuple[str, ...] | None = None
    optimizer: Optimizer | None = None
    #: None: 20 for Newton, 10 for gradient descent
    rounds: int | None = Field(default=None, ge=1, le=200)
    local_steps: int = Field(default=5, ge=1, le=100)
    learning_rate: float = Field(default=2.0, gt=0, le=100)
    #: None: Newton clips at half the largest gradient a resident can have; gradient descent at the
    #: contract's rows per resident
    clipping_norm: float | None = Field(default=None, gt=0, le=100)
    #: private AUC, calibration and coefficient intervals (binary outcomes; costs a share of the budget)
    evaluate: bool = True


class RiskFactorParams(_Common):
    """Espoo project 2, across sectors: which risk factors — and which pairs of them — go with a child
    becoming a child-welfare client, from counts over the register's children, never pooling a record."""

    municipality: str = Field(pattern=r"^[a-z0-9_-]{1,48}$")
    #: sectors holding risk factors (each a contract with ``*_rf_*`` indicators)
    factor_sectors: tuple[str, ...] = Field(default=("child_health", "social_services", "education", "employment"),
                                            min_length=1, max_length=8)
    outcome_sector: str = "child_welfare"
    cohort_sector: str = "population_register"
    max_age: int = Field(default=17, ge=0, le=120)
    reference_date: str = Field(default="2024-12-31", pattern=r"^\d{4}-\d{2}-\d{2}$")
    #: the analyst's own pairs, besides the screen of the strongest factors
    pairs: tuple[tuple[str, str], ...] = Field(default=(), max_length=300)
    screen_top: int = Field(default=15, ge=0, le=30)
    max_pairs: int = Field(default=105, ge=0, le=300)


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    params: type[_Common]
    build: Callable[[Any, Contract], tuple[_Task, TableSpec | None, ModelSpec | None]] | None
    #: a cross-sector template (or variant) builds its whole section from the catalog; None: a horizontal study
    cross_sector: Callable[[Any, ContractCatalog], CrossSectorSpec | None] | None = None


def _transitions(p: TransitionParams, contract: Contract) -> tuple[_Task, TableSpec | None, ModelSpec | None]:
    _columns(contract, [p.time, p.state, *([p.by] if p.by else [])])
    return "dp_table", TableSpec(transitions=TransitionSpec(time=p.time, state=p.state, by=p.by,
                                                            horizon_years=p.horizon_years,
                                                            population=p.population,
                                                            estimator=p.estimator)), None


def _table(p: TableParams, contract: Contract) -> tuple[_Task, TableSpec | None, ModelSpec | None]:
    _columns(contract, list(p.group_by))
    return "dp_table", TableSpec(group_by=p.group_by), None


def _logreg(p: LogregParams, contract: Contract) -> tuple[_Task, TableSpec | None, ModelSpec | None]:
    _columns(contract, [p.outcome, *p.features])
    if p.outcome in p.features:
        raise UsageError(f"{p.outcome!r} is both the outcome and a feature")
    if unknown := [c for c in p.categorical or () if c not in p.features]:
        raise UsageError(f"categorical names {', '.join(map(repr, unknown))}, which are not among the features")
    optimizer = p.optimizer or ("gradient_descent" if {"local_steps", "learning_rate"} & p.model_fields_set
                                else "newton")
    # gradient descent: one resident may contribute several rows, so clip at their count so that the bound is
    # not a bias; Newton chooses its own clipping from the contract (federation.privacy.plan_study)
    clip = p.clipping_norm or (float(contract.max_rows_per_resident) if optimizer == "gradient_descent" else None)
    return "dp_logreg", None, ModelSpec(
        outcome=p.outcome, positive=p.positive, classes=p.classes, features=p.features,
        categorical=p.categorical or None, optimizer=optimizer,
        rounds=p.rounds, local_steps=p.local_steps, learning_rate=p.learning_rate, clipping_norm=clip,
        evaluate=p.evaluate and (p.positive is not None or len(p.classes or ()) == 2 or _boolean(contract, p.outcome)))


def _boolean(contract: Contract, name: str) -> bool:
    return any(c.name == name and c.type == "boolean" for c in contract.expanded_columns)


def _columns(contract: Contract, names: list[str]) -> None:
    known = {c.name: c for c in contract.expanded_columns}
    for name in names:
        column = known.get(name)
        if column is None:
            raise UsageError(f"contract {contract.label} has no column {name!r}")
        if column.privacy == "direct_identifier":
            raise UsageError(f"column {name!r} is a direct identifier in contract {contract.label}; "
                             "it can never be an outcome, a feature or a table dimension")


def _transitions_across(p: TransitionParams, catalog: ContractCatalog) -> CrossSectorSpec | None:
    if p.by_sector is None:
        return None
    if len(p.municipalities) != 1:
        raise UsageError("transitions by another sector's service are studied one municipality at a time")
    if p.by is not None and p.by != "service_status":
        raise UsageError("give either by (a column of the health silo) or by_sector, not both")
    municipality = p.municipalities[0]
    catalog.get(p.by_sector)
    return CrossSectorSpec(
        cohort=CohortSpec(dataset=f"{municipality}/population_register", min_age=0, max_age=120),
        outcome=OutcomeSpec(dataset=f"{municipality}/{p.by_sector}", contract=p.by_sector, column=p.by_column),
        factors=(FactorSource(dataset=f"{municipality}/{p.contract}", contract=p.contract,
                              moves=MovesSpec(time=p.time, state=p.state)),),
        pairs=PairsSpec(screen_top=0, max_pairs=0))


def _risk_factors(p: RiskFactorParams, catalog: ContractCatalog) -> CrossSectorSpec:
    import datetime as dt

    for sector in (p.cohort_sector, p.outcome_sector, *p.factor_sectors):
        catalog.get(sector)
    try:
        reference = dt.date.fromisoformat(p.reference_date)
    except ValueError:
        raise UsageError(f"reference_date {p.reference_date} is not a date") from None
    return CrossSectorSpec(
        cohort=CohortSpec(dataset=f"{p.municipality}/{p.cohort_sector}", contract=p.cohort_sector, max_age=p.max_age,
                          reference_date=reference),
        outcome=OutcomeSpec(dataset=f"{p.municipality}/{p.outcome_sector}", contract=p.outcome_sector),
        factors=tuple(FactorSource(dataset=f"{p.municipality}/{s}", contract=s) for s in p.factor_sectors),
        pairs=PairsSpec(listed=tuple(tuple(sorted(pair)) for pair in p.pairs),  # type: ignore[misc]
                        screen_top=p.screen_top, max_pairs=p.max_pairs))


TEMPLATES: dict[str, Template] = {t.name: t for t in (
    Template("health_transitions", "Health-segment transitions per service status", TransitionParams,
             _transitions, _transitions_across),
    Template("dp_table", "Counts and cross-tabulations", TableParams, _table),
    Template("logistic_regression", "Logistic regression (noisy Newton, or DP gradient descent)", LogregParams,
             _logreg),
    Template("child_welfare_risk_factors", "Child-welfare risk factors and their combinations, across sectors",
             RiskFactorParams, None, _risk_factors),
)}


def build_spec(template: str, study_id: str, period: str, params: dict[str, Any],
               registry: ContractCatalog) -> StudySpec:
    """The unsigned study spec for ``template`` with ``params``; UsageError names the first problem."""
    chosen = TEMPLATES.get(template)
    if chosen is None:
        raise UsageError(f"unknown template {template!r}; known: {', '.join(sorted(TEMPLATES))}")
    try:
        parsed = chosen.params.model_validate(params)
    except ValidationError as error:
        raise UsageError(f"template {template} parameters: {describe_validation_error(error)}") from None
    cross = chosen.cross_sector(parsed, registry) if chosen.cross_sector is not None else None
    if cross is not None:
        try:
            return StudySpec(study_id=study_id, task="cross_sector_counts", datasets=cross.datasets,
                             privacy=PrivacySpec(epsilon=parsed.epsilon, delta=parsed.delta), cross_sector=cross,
                             period=period)
        except ValidationError as error:
            raise UsageError(f"study {study_id}: {describe_validation_error(error)}") from None
    assert chosen.build is not None
    contract_name = str(getattr(parsed, "contract"))
    contract = registry.get(contract_name)
    task, table, model = chosen.build(parsed, contract)
    municipalities: tuple[str, ...] = getattr(parsed, "municipalities")
    sector = contract.name
    try:
        return StudySpec(study_id=study_id, task=task, contract=contract.name,
                         datasets=tuple(f"{m}/{sector}" for m in municipalities),
                         privacy=PrivacySpec(epsilon=parsed.epsilon, delta=parsed.delta),
                         table=table, model=model, period=period)
    except ValidationError as error:
        raise UsageError(f"study {study_id}: {describe_validation_error(error)}") from None
