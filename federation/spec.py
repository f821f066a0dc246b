"""A study spec: what to compute, on which datasets, at what privacy budget. Parsed once, here.

The same spec travels to every node; nodes recompute the study's cost from it rather than trusting
a number they are told.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from common.errors import UsageError, describe_validation_error

__all__ = ["ModelSpec", "PrivacySpec", "StudySpec", "TableSpec", "TransitionSpec", "load_spec", "parse_spec"]


class PrivacySpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: (ε, δ) each dataset may spend on this study; the accounting itself is in ρ
    epsilon: float = Field(ge=0.001, le=20)
    delta: float = Field(ge=1e-12, lt=1e-2)


class TransitionSpec(BaseModel):
    """Count moves of ``state`` from one ``time`` value to the next, per ``by`` at the start."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    time: str
    state: str
    by: str | None = None
    #: post-processing at the server: project the distribution this many years ahead
    horizon_years: int = Field(default=10, ge=1, le=30)
    #: scale projected service demand to this many residents (else per 1,000 residents)
    population: int | None = Field(default=None, ge=1, le=100_000_000)
    #: server-side estimator of the matrices: "ordinal_shrinkage" (rows borrow strength from the
    #: pooled pattern of moves up and down an ordinal state) or "raw" (each row on its own counts)
    estimator: Literal["ordinal_shrinkage", "raw"] = "ordinal_shrinkage"


class TableSpec(BaseModel):
    """Counts over the cross-tabulation of ``group_by`` columns, or a transition table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    group_by: tuple[str, ...] = ()
    transitions: TransitionSpec | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> TableSpec:
        if bool(self.group_by) == bool(self.transitions):
            raise ValueError("a table counts either group_by columns or transitions, exactly one of them")
        return self


class ModelSpec(BaseModel):
    """Logistic regression (binary, or multinomial with a reference class) by DP gradient descent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: str
    #: outcome categories; the first is the reference class. Two classes = binary logistic regression.
    classes: tuple[str, ...] | None = None
    #: for a boolean outcome, or to merge categories: the values counted as the positive class
    positive: tuple[str, ...] | None = None
    features: tuple[str, ...] = Field(min_length=1)
    rounds: int = Field(default=10, ge=1, le=500)
    local_steps: int = Field(default=5, ge=1, le=100)
    learning_rate: float = Field(default=2.0, gt=0, le=100)
    clipping_norm: float = Field(default=1.0, gt=0, le=100)
    #: share of the budget spent on the noisy count of residents (weights and averaging)
    count_share: float = Field(default=0.02, gt=0, lt=0.5)
    #: after training, release noisy score histograms and the Fisher information (binary outcomes):
    #: private AUC and calibration, and coefficient intervals; costs ``evaluation_share`` of the budget
    evaluate: bool = False
    evaluation_share: float = Field(default=0.1, gt=0, lt=0.5)

    @property
    def steps(self) -> int:
        return self.rounds * self.local_steps


class StudySpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    study_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    task: Literal["dp_table", "dp_logreg"]
    #: the contract every participating dataset follows (horizontal federation)
    contract: str
    #: dataset ids (``<municipality>/<sector>``) that must take part; each is charged
    datasets: tuple[str, ...] = Field(min_length=1)
    privacy: PrivacySpec
    table: TableSpec | None = None
    model: ModelSpec | None = None
    #: the data period the budgets are charged for (e.g. "2024"); informational for nodes
    period: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    #: the coordinator's Ed25519 signature over :meth:`canonical_json`; nodes refuse specs without it
    signature: str | None = None

    @model_validator(mode="after")
    def _task_parameters(self) -> StudySpec:
        if self.task == "dp_table" and (self.table is None or self.model is not None):
            raise ValueError("a dp_table study needs a 'table' section and no 'model'")
        if self.task == "dp_logreg" and (self.model is None or self.table is not None):
            raise ValueError("a dp_logreg study needs a 'model' section and no 'table'")
        if len(set(self.datasets)) != len(self.datasets):
            raise ValueError("a dataset is named twice")
        return self

    def canonical_json(self) -> str:
        """The spec as signed and hashed: sorted keys, no signature, no whitespace."""
        return json.dumps(self.model_dump(mode="json", exclude={"signature"}), sort_keys=True, separators=(",", ":"))


def parse_spec(document: object, source: str = "spec") -> StudySpec:
    try:
        return StudySpec.model_validate(document)
    except ValidationError as error:
        raise UsageError(f"study spec {source}: {describe_validation_error(error)}") from None


def load_spec(path: Path) -> StudySpec:
    if not path.is_file():
        raise UsageError(f"study spec {path} does not exist")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UsageError(f"study spec {path.name} is not valid JSON") from None
    return parse_spec(document, path.name)
