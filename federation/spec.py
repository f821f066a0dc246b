"""A study spec: what to compute, on which datasets, at what privacy budget. Parsed once, here.

The same spec travels to every node; nodes recompute the study's cost from it rather than trusting
a number they are told.
"""

from __future__ import annotations

import json
from pathlib import Path
import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from common.errors import UsageError, describe_validation_error

__all__ = ["AuditAnchor", "CohortSpec", "CrossSectorSpec", "FactorSource", "HomomorphicSpec", "ModelSpec", "MovesSpec",
           "Optimizer", "OutcomeSpec", "PairsSpec",
           "PrivacySpec", "StudySpec", "TableSpec", "TransitionSpec", "load_spec", "parse_spec"]

DATASET_ID = r"^[a-z0-9_-]{1,48}/[a-z0-9_]{1,48}$"


class PrivacySpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: (ε, δ) each dataset may spend on this study; the accounting itself is in ρ
    epsilon: float = Field(ge=0.001, le=20)
    delta: float = Field(ge=1e-12, lt=1e-2)
    #: how a horizontal study (Gaussian releases only) turns (ε, δ) into ρ and back: "exact_gaussian" — the
    #: exact curve of the composed Gaussian mechanism; "zcdp" — OpenDP's zCDP conversion (about 7 % more noise
    #: at ε = 1). None: a spec serialised before this field existed, which meant zCDP; it keeps that meaning and
    #: its signature (see ``StudySpec._infer_accounting``). Cross-sector studies always use zCDP.
    accounting: Literal["exact_gaussian", "zcdp"] | None = "exact_gaussian"


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


Optimizer = Literal["newton", "gradient_descent"]
#: Newton's rounds when a spec names none
NEWTON_ROUNDS = 20


class ModelSpec(BaseModel):
    """Logistic regression (binary, or multinomial with a reference class), trained privately.

    ``optimizer``: ``"newton"`` — a federated noisy Newton method: every round each node releases its noisy
    clipped gradient, and in a few rounds its noisy curvature (Hessian); the server takes damped Newton steps
    and averages the last half of the iterates (rounds, clipping and step sizes need no tuning). Or
    ``"gradient_descent"`` — DP gradient descent: ``local_steps`` noisy steps of ``learning_rate`` per round at
    each node, updates averaged by noisy resident counts. A spec that names no optimizer but sets
    ``local_steps`` or ``learning_rate`` keeps the meaning it had before this field existed (gradient descent,
    ``optimizer`` stays None and out of the signed JSON); otherwise it gets Newton.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: str
    #: outcome categories; the first is the reference class. Two classes = binary logistic regression.
    classes: tuple[str, ...] | None = None
    #: for a boolean outcome, or to merge categories: the values counted as the positive class
    positive: tuple[str, ...] | None = None
    features: tuple[str, ...] = Field(min_length=1)
    #: integer features to one-hot over their contract range instead of scaling them (a level with an effect of
    #: its own, like a health segment). None: none (and left out of the signed JSON, as before the field)
    categorical: tuple[str, ...] | None = None
    #: None only in specs written before the field existed: gradient descent (see the class docstring)
    optimizer: Optimizer | None = None
    #: None: 20 for Newton (more rounds cost only time: the last half of the iterates is averaged), 10 for
    #: gradient descent (its default before)
    rounds: int | None = Field(default=None, ge=1, le=500)
    #: gradient descent only
    local_steps: int = Field(default=5, ge=1, le=100)
    #: gradient descent only
    learning_rate: float = Field(default=2.0, gt=0, le=100)
    #: each resident's summed gradient is clipped to this L2 norm. None: Newton takes half the largest norm a
    #: resident's gradient can have (from the contract's rows per resident and the encoded features); gradient
    #: descent takes 1.0, its default before
    clipping_norm: float | None = Field(default=None, gt=0, le=100)
    #: share of the budget spent on the noisy count of residents (weights and averaging)
    count_share: float = Field(default=0.02, gt=0, lt=0.5)
    #: after training, release noisy score histograms and the Fisher information (binary outcomes):
    #: private AUC and calibration, and coefficient intervals; costs ``evaluation_share`` of the budget
    evaluate: bool = False
    evaluation_share: float = Field(default=0.1, gt=0, lt=0.5)

    @model_validator(mode="before")
    @classmethod
    def _infer_optimizer(cls, data: object) -> object:
        if isinstance(data, dict) and "optimizer" not in data:
            legacy = "local_steps" in data or "learning_rate" in data
            data = {**data, "optimizer": None if legacy else "newton"}
        return data

    @model_validator(mode="after")
    def _categorical_are_features(self) -> ModelSpec:
        unknown = [c for c in self.categorical or () if c not in self.features]
        if unknown:
            raise ValueError(f"categorical names {', '.join(unknown)}, which are not among the features")
        return self

    @property
    def round_count(self) -> int:
        """The rounds this spec means (see ``rounds``)."""
        return self.rounds or (NEWTON_ROUNDS if self.method == "newton" else 10)

    @property
    def method(self) -> Optimizer:
        """The optimizer this spec means (None: gradient descent, as every spec before the field)."""
        return self.optimizer or "gradient_descent"


class CohortSpec(BaseModel):
    """Who is counted: the population register's residents aged ``min_age``-``max_age`` on ``reference_date``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str = Field(pattern=DATASET_ID)
    contract: str = "population_register"
    birth_column: str = "birth_date"
    min_age: int = Field(default=0, ge=0, le=120)
    max_age: int = Field(default=17, ge=0, le=120)
    reference_date: dt.date = dt.date(2024, 12, 31)


class OutcomeSpec(BaseModel):
    """The 0/1 vector the key holder encrypts: a cohort member has it when the dataset's extract holds a row
    for them (and, with ``column``, that boolean column is true in it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str = Field(pattern=DATASET_ID)
    contract: str = "child_welfare"
    column: str | None = None


class MovesSpec(BaseModel):
    """Instead of 0/1 factors, a node contributes each cohort member's moves of ``state`` from one ``time``
    value to the next: one count per (from, to) cell."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    time: str
    state: str


class FactorSource(BaseModel):
    """One sector's risk factors: 0/1 columns of its contract (empty: every ``*_rf_*`` indicator it declares),
    or its residents' moves between states (``moves``). A cohort member the sector does not serve adds 0."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str = Field(pattern=DATASET_ID)
    contract: str
    columns: tuple[str, ...] = ()
    moves: MovesSpec | None = None


class PairsSpec(BaseModel):
    """Which factor combinations get a 2×2×2 table: the analyst's list, then pairs among the
    ``screen_top`` factors the first stage ranks highest; at most ``max_pairs`` (charged in advance)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    listed: tuple[tuple[str, str], ...] = Field(default=(), max_length=300)
    screen_top: int = Field(default=15, ge=0, le=30)
    max_pairs: int = Field(default=105, ge=0, le=300)


class HomomorphicSpec(BaseModel):
    """BFV parameters of the encrypted counts (every node checks them once)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    poly_modulus_degree: Literal[8192, 16384] = 8192
    plain_modulus: int = 786_433
    hiding_bits: int = Field(default=40, ge=32, le=64)


class CrossSectorSpec(BaseModel):
    """Counts over the same residents held by different sectors, linked without pooling: the cohort from
    the population register, the outcome from one sector, risk factors from others."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cohort: CohortSpec
    outcome: OutcomeSpec
    factors: tuple[FactorSource, ...] = Field(min_length=1, max_length=12)
    pairs: PairsSpec = PairsSpec()
    homomorphic: HomomorphicSpec = HomomorphicSpec()
    #: each dataset's enrolled identity key (OpenSSH), bound into the coordinator's signature: a node trusts
    #: another node's announced linkage key only if it verifies under the key listed here
    participants: dict[str, str] = Field(default_factory=dict)

    @property
    def datasets(self) -> tuple[str, ...]:
        return (self.cohort.dataset, self.outcome.dataset, *(f.dataset for f in self.factors))

    def role(self, dataset: str) -> str:
        if dataset == self.cohort.dataset:
            return "cohort"
        if dataset == self.outcome.dataset:
            return "outcome"
        return "factors"

    def contract_of(self, dataset: str) -> str:
        if dataset == self.cohort.dataset:
            return self.cohort.contract
        if dataset == self.outcome.dataset:
            return self.outcome.contract
        return next(f.contract for f in self.factors if f.dataset == dataset)


class AuditAnchor(BaseModel):
    """Where the coordinator's audit chain stood right after this study's charge: the entry's sequence number,
    hash and time. Signed with the spec, so every node learns a point of the chain that a later rewrite or cut
    of the log cannot move without the node noticing (see ``nodes.ledger.NodeLedger.record_anchor``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int = Field(ge=1)
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    at: dt.datetime

    @model_validator(mode="after")
    def _aware(self) -> AuditAnchor:
        if self.at.tzinfo is None:
            raise ValueError("an audit anchor's time carries its time zone")
        return self


#: optional StudySpec fields that specs signed by earlier versions do not have (see ``canonical_json``)
_ADDED_LATER = ("cross_sector", "quorum", "audit_anchor")


class StudySpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    study_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    task: Literal["dp_table", "dp_logreg", "cross_sector_counts"]
    #: the contract every participating dataset follows (horizontal studies; a cross-sector study names
    #: one contract per dataset in its ``cross_sector`` section)
    contract: str | None = None
    #: dataset ids (``<municipality>/<sector>``) that must take part; each is charged
    datasets: tuple[str, ...] = Field(min_length=1)
    privacy: PrivacySpec
    table: TableSpec | None = None
    model: ModelSpec | None = None
    cross_sector: CrossSectorSpec | None = None
    #: horizontal studies: how many datasets must still answer for the study to go on when a node is lost
    #: (None: every one); a dropped dataset stays charged and is named in the result
    quorum: int | None = Field(default=None, ge=1)
    #: the data period the budgets are charged for (e.g. "2024"); informational for nodes
    period: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    #: the audit chain's position right after the charge (set by the coordinator before it signs; absent in a
    #: spec run without a coordinator)
    audit_anchor: AuditAnchor | None = None
    #: the coordinator's Ed25519 signature over :meth:`canonical_json`; nodes refuse specs without it
    signature: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _infer_accounting(cls, data: object) -> object:
        """A serialised spec (it has a ``signature`` key) whose privacy section lacks ``accounting`` was written
        before the field existed, when every study was calibrated by zCDP: None keeps that meaning. So does a
        cross-sector spec, which the field does not concern."""
        if isinstance(data, dict) and isinstance(data.get("privacy"), dict) and "accounting" not in data["privacy"]:
            if "signature" in data or data.get("task") == "cross_sector_counts":
                data = {**data, "privacy": {**data["privacy"], "accounting": None}}
        return data

    @model_validator(mode="after")
    def _task_parameters(self) -> StudySpec:
        if self.task == "dp_table" and (self.table is None or self.model is not None):
            raise ValueError("a dp_table study needs a 'table' section and no 'model'")
        if self.task == "dp_logreg" and (self.model is None or self.table is not None):
            raise ValueError("a dp_logreg study needs a 'model' section and no 'table'")
        if self.task == "cross_sector_counts":
            if self.cross_sector is None or self.table is not None or self.model is not None:
                raise ValueError("a cross_sector_counts study needs a 'cross_sector' section only")
            if set(self.cross_sector.datasets) != set(self.datasets):
                raise ValueError("datasets must be exactly the cohort, outcome and factor datasets")
        elif self.cross_sector is not None or self.contract is None:
            raise ValueError(f"a {self.task} study names its 'contract' and has no 'cross_sector' section")
        if len(set(self.datasets)) != len(self.datasets):
            raise ValueError("a dataset is named twice")
        if self.quorum is not None and (self.quorum > len(self.datasets) or self.cross_sector is not None):
            raise ValueError("quorum must be at most the number of datasets, and a cross-sector study has none")
        return self

    def contract_of(self, dataset: str) -> str:
        """The contract ``dataset`` follows in this study."""
        if self.cross_sector is not None:
            return self.cross_sector.contract_of(dataset)
        assert self.contract is not None
        return self.contract

    def canonical_json(self) -> str:
        """The spec as signed and hashed: sorted keys, no signature, no whitespace. Fields added after specs were
        first signed are left out while unset, so a spec signed before they existed still verifies."""
        exclude: dict[str, object] = {"signature": True}
        exclude |= {name: True for name in _ADDED_LATER if getattr(self, name) is None}
        if self.model is not None:    # model fields added later, left out while unset
            unset = {name: True for name in ("optimizer", "categorical") if getattr(self.model, name) is None}
            if unset:
                exclude["model"] = unset
        if self.privacy.accounting is None:                             # a zCDP-calibrated spec from before
            exclude["privacy"] = {"accounting": True}
        return json.dumps(self.model_dump(mode="json", exclude=exclude), sort_keys=True,  # type: ignore[arg-type]
                          separators=(",", ":"))


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
