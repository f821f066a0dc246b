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
from federation.spec import ModelSpec, PrivacySpec, StudySpec, TableSpec, TransitionSpec
from schemas import Contract, ContractCatalog

__all__ = ["TEMPLATES", "Template", "build_spec"]

_Task = Literal["dp_table", "dp_logreg"]


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


class TableParams(_Common):
    """Counts over the cross-tabulation of contract columns with small public domains."""

    contract: str
    municipalities: tuple[str, ...] = Field(min_length=1)
    group_by: tuple[str, ...] = Field(min_length=1, max_length=4)


class LogregParams(_Common):
    """Logistic regression of ``outcome`` on ``features`` by DP gradient descent, for any contract."""

    contract: str
    municipalities: tuple[str, ...] = Field(min_length=1)
    outcome: str
    positive: tuple[str, ...] | None = None
    classes: tuple[str, ...] | None = None
    features: tuple[str, ...] = Field(min_length=1)
    rounds: int = Field(default=10, ge=1, le=200)
    local_steps: int = Field(default=5, ge=1, le=100)
    learning_rate: float = Field(default=2.0, gt=0, le=100)
    clipping_norm: float | None = Field(default=None, gt=0, le=100)
    #: private AUC, calibration and coefficient intervals (binary outcomes; costs a share of the budget)
    evaluate: bool = True


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    params: type[_Common]
    build: Callable[[Any, Contract], tuple[_Task, TableSpec | None, ModelSpec | None]]


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
    # one resident may contribute several rows: clip at their count so that the bound is not a bias
    clip = p.clipping_norm or float(contract.max_rows_per_resident)
    return "dp_logreg", None, ModelSpec(
        outcome=p.outcome, positive=p.positive, classes=p.classes, features=p.features, rounds=p.rounds,
        local_steps=p.local_steps, learning_rate=p.learning_rate, clipping_norm=clip,
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


TEMPLATES: dict[str, Template] = {t.name: t for t in (
    Template("health_transitions", "Health-segment transitions per service status", TransitionParams,
             _transitions),
    Template("dp_table", "Counts and cross-tabulations", TableParams, _table),
    Template("logistic_regression", "Logistic regression (DP gradient descent)", LogregParams, _logreg),
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
