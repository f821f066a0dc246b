"""From a study spec and its contract to noise parameters and the exact ρ each dataset is charged.

Nodes and coordinator call the same function, so a node can recompute the cost of a study from
the spec alone and refuse one that does not add up.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from common.errors import UsageError
from federation.privacy._accounting import epsilon, gaussian_rho, rho_for_epsilon
from federation.privacy._cross_sector import CrossSectorPlan, plan_cross_sector
from federation.privacy._loss import PrivacyLoss
from federation.spec import CrossSectorSpec, ModelSpec, StudySpec, TableSpec
from schemas.contract import Column, Contract

__all__ = ["EVALUATION_BINS", "ContractSource", "EvaluationPlan", "ModelPlan", "StudyPlan", "TablePlan",
           "column_domain", "feature_names", "plan_study"]

_MAX_DOMAIN = 200
_MAX_CELLS = 100_000


def column_domain(column: Column) -> list[Any]:
    """The public set of values a column can take, for tabulating it; from the contract only."""
    if column.type == "category":
        assert column.categories is not None
        return list(column.categories)
    if column.type == "boolean":
        return [False, True]
    if column.type == "integer" and column.range is not None:
        lo, hi = int(column.range[0]), int(column.range[1])  # type: ignore[arg-type]
        if hi - lo + 1 <= _MAX_DOMAIN:
            return list(range(lo, hi + 1))
    raise UsageError(f"column {column.name!r} has no small public domain in its contract; it cannot be tabulated")


@dataclass(frozen=True)
class TablePlan:
    columns: tuple[str, ...]
    cells: tuple[tuple[Any, ...], ...]
    #: L2 sensitivity: the most one resident can change the count vector
    sensitivity: float
    noise_scale: float


#: score bins of the private evaluation histograms
EVALUATION_BINS = 50


@dataclass(frozen=True)
class EvaluationPlan:
    """Noisy score histograms (per class) and the Fisher information at the final parameters."""

    bins: int
    histogram_sensitivity: float
    histogram_noise_scale: float
    fisher_sensitivity: float
    fisher_noise_scale: float


@dataclass(frozen=True)
class ModelPlan:
    features: tuple[str, ...]
    classes: tuple[str, ...]
    noise_multiplier: float
    noise_scale: float
    count_noise_scale: float
    steps: int
    evaluation: EvaluationPlan | None = None


@dataclass(frozen=True)
class StudyPlan:
    spec: StudySpec
    loss: PrivacyLoss
    epsilon: float
    mechanism: dict[str, Any]
    table: TablePlan | None = None
    model: ModelPlan | None = None
    cross_sector: CrossSectorPlan | None = None
    per_dataset: dict[str, PrivacyLoss] = field(default_factory=dict)

    def epsilon_of(self, dataset: str) -> float:
        """The ε one dataset is charged (cross-sector studies charge each dataset its own)."""
        return epsilon(float(self.per_dataset[dataset].rho), self.spec.privacy.delta)

    def what_noise_means(self, dataset: str) -> dict[str, Any]:
        """For a privacy officer: how many released numbers one of this dataset's residents can change, and the
        noise (one standard deviation) on each, in words."""
        if self.cross_sector is not None and self.spec.cross_sector is not None:
            noise = self.cross_sector.noise
            counts = noise.counts[dataset]
            role = self.spec.cross_sector.role(dataset)
            sd = {"cohort": noise.cohort, "outcome": noise.outcome_stage1}.get(role) or noise.factor_stage1[dataset]
            exposed_cases = max(math.hypot(s, noise.outcome_stage1) for s in noise.factor_stage1.values())
            return {"counts_per_resident": counts, "noise_sd": sd,
                    "in_words": f"one resident can change up to {counts} released counts; every count of children "
                                f"with a risk factor and the outcome is released ± {exposed_cases:.0f} (one sd)"}
        if self.table is not None:
            return {"counts_per_resident": len(self.table.cells), "noise_sd": self.table.noise_scale,
                    "in_words": f"each released count ± {self.table.noise_scale:.0f} (one sd); one resident's rows "
                                f"change the counts by at most {self.table.sensitivity:g} in all (L2)"}
        assert self.model is not None
        return {"counts_per_resident": self.model.steps, "noise_sd": self.model.noise_scale,
                "in_words": f"{self.model.steps} noisy model updates, each ± {self.model.noise_scale:.2g} per "
                            "coefficient (one sd), on gradients clipped per resident"}

    def privacy_json(self) -> dict[str, Any]:
        rho = float(self.loss.rho)
        return {
            "unit": "resident",
            "rho": rho,
            "epsilon": self.epsilon,
            "delta": self.spec.privacy.delta,
            "accounting": "zCDP composed by OpenDP; (epsilon, delta) by OpenDP's zCDP-to-approxDP conversion",
            "per_dataset": {ds: {"rho": float(loss.rho), "rho_units": loss.units} for ds, loss in self.per_dataset.items()},
            **self.mechanism,
        }


class ContractSource(Protocol):
    def get(self, name: str) -> Contract: ...


def plan_study(spec: StudySpec, contracts: ContractSource | Contract) -> StudyPlan:
    """Noise scales and each dataset's exact charge, from the spec and the contracts it names (a horizontal
    study may be given its one contract directly)."""
    # A hair below the budget, so that OpenDP's conservative rounding and the ledger's rounding up
    # to whole units still leave the charged (ε, δ) within what the study asked for.
    target = rho_for_epsilon(spec.privacy.epsilon, spec.privacy.delta) * (1 - 1e-6)
    if spec.cross_sector is not None:
        if isinstance(contracts, Contract):
            raise UsageError("a cross-sector study is planned against every contract it names, not one")
        return _plan_cross_sector(spec, spec.cross_sector, contracts, target)
    contract = contracts if isinstance(contracts, Contract) else contracts.get(spec.contract_of(spec.datasets[0]))
    if spec.table is not None:
        table = _plan_table(spec.table, contract, target)
        rho = gaussian_rho(table.sensitivity, table.noise_scale)
        mechanism = {"mechanism": "gaussian", "noise_scale": table.noise_scale,
                     "sensitivity_l2": table.sensitivity, "clipping_norm": None, "steps": 1}
        model = None
    else:
        assert spec.model is not None
        model = _plan_model(spec.model, contract, target)
        rho = (gaussian_rho(1.0, model.count_noise_scale)
               + gaussian_rho(spec.model.clipping_norm, model.noise_scale, model.steps))
        mechanism = {"mechanism": "gaussian", "noise_multiplier": model.noise_multiplier,
                     "noise_scale": model.noise_scale, "clipping_norm": spec.model.clipping_norm,
                     "steps": model.steps, "count_noise_scale": model.count_noise_scale}
        if model.evaluation is not None:
            e = model.evaluation
            rho += (gaussian_rho(e.histogram_sensitivity, e.histogram_noise_scale)
                    + gaussian_rho(e.fisher_sensitivity, e.fisher_noise_scale))
            mechanism["evaluation"] = {"bins": e.bins, "histogram_noise_scale": e.histogram_noise_scale,
                                       "fisher_noise_scale": e.fisher_noise_scale}
        table = None
    loss = PrivacyLoss.from_rho(rho)
    return StudyPlan(spec=spec, loss=loss, epsilon=epsilon(float(loss.rho), spec.privacy.delta),
                     mechanism=mechanism, table=table, model=model,
                     per_dataset={ds: loss for ds in spec.datasets})


def _plan_cross_sector(spec: StudySpec, cross: CrossSectorSpec, contracts: ContractSource,
                       target: float) -> StudyPlan:
    plan = plan_cross_sector(cross, {d: contracts.get(cross.contract_of(d)) for d in cross.datasets}, target)
    per_dataset = {d: PrivacyLoss.from_rho(rho) for d, rho in plan.noise.rho.items()}
    loss = max(per_dataset.values())
    noise = plan.noise
    mechanism = {"mechanism": "discrete_gaussian", "noise_scale": noise.outcome_stage1,
                 "noise_scales": {"cohort_size": noise.cohort, "outcome": noise.outcome_stage1,
                                  "outcome_pairs": noise.outcome_stage2, "factor_nodes": noise.factor_stage1,
                                  "exposed": {d: noise.local(d) for d in noise.factor_stage1},
                                  "factor_nodes_pairs": noise.factor_stage2},
                 "counts_per_resident": noise.counts, "clipping_norm": None, "steps": 1,
                 "encryption": "BFV (TenSEAL/SEAL), masked and noise-flooded; linkage by HMAC-SHA256 pseudonyms"}
    return StudyPlan(spec=spec, loss=loss, epsilon=epsilon(float(loss.rho), spec.privacy.delta),
                     mechanism=mechanism, cross_sector=plan, per_dataset=per_dataset)


def _column(contract: Contract, name: str, purpose: str) -> Column:
    try:
        column = contract.column(name)
    except KeyError:
        raise UsageError(f"{purpose} {name!r} is not a column of contract {contract.label}") from None
    if column.privacy == "direct_identifier":
        raise UsageError(f"{purpose} {name!r} is a direct identifier; it never enters a study")
    return column


def _plan_table(table: TableSpec, contract: Contract, rho: float) -> TablePlan:
    m = contract.max_rows_per_resident
    if table.transitions is not None:
        t = table.transitions
        time_col = _column(contract, t.time, "time column")
        if time_col.type not in ("integer", "date"):
            raise UsageError(f"time column {t.time!r} must be an integer or a date")
        if t.estimator == "ordinal_shrinkage" and _column(contract, t.state, "state").type != "integer":
            raise UsageError(f"estimator ordinal_shrinkage needs an ordinal (integer) state; {t.state!r} is not "
                             "one — use estimator raw")
        names = ([t.by] if t.by else []) + [t.state, t.state]
        domains = [column_domain(_column(contract, n, "table column")) for n in names]
        columns = tuple(([t.by] if t.by else []) + [f"{t.state}_from", f"{t.state}_to"])
        sensitivity = float(max(m - 1, 1))  # one resident's moves, all possibly in one cell
    else:
        domains = [column_domain(_column(contract, n, "table column")) for n in table.group_by]
        columns = tuple(table.group_by)
        sensitivity = float(m)
    cells = tuple(itertools.product(*domains))
    if len(cells) > _MAX_CELLS:
        raise UsageError(f"the table would have {len(cells):,} cells; at most {_MAX_CELLS:,} are allowed")
    return TablePlan(columns=columns, cells=cells, sensitivity=sensitivity,
                     noise_scale=sensitivity / math.sqrt(2.0 * rho))


def feature_names(model: ModelSpec, contract: Contract) -> tuple[str, ...]:
    """Encoded feature names: numbers scaled by the contract range, categories one-hot, then intercept."""
    names: list[str] = []
    for name in model.features:
        column = _column(contract, name, "feature")
        if name == model.outcome:
            raise UsageError(f"feature {name!r} is the outcome")
        if column.type in ("integer", "number"):
            if column.range is None:
                raise UsageError(f"feature {name!r} needs a range in the contract to be scaled")
            names.append(name)
        elif column.type == "boolean":
            names.append(name)
        elif column.type == "category":
            assert column.categories is not None
            names += [f"{name}={c}" for c in column.categories]
        else:
            raise UsageError(f"feature {name!r} of type {column.type} cannot enter a model")
    return (*names, "(intercept)")


def model_classes(model: ModelSpec, contract: Contract) -> tuple[str, ...]:
    column = _column(contract, model.outcome, "outcome")
    if model.positive is not None:
        return ("other", "positive")
    if model.classes is not None:
        return model.classes
    if column.type == "boolean":
        return ("False", "True")
    if column.type == "category":
        assert column.categories is not None
        return column.categories
    raise UsageError(f"outcome {model.outcome!r} must be boolean or categorical, or name its positive values")


def _plan_model(model: ModelSpec, contract: Contract, rho: float) -> ModelPlan:
    features = feature_names(model, contract)
    classes = model_classes(model, contract)
    if len(classes) < 2:
        raise UsageError("a model needs at least two outcome classes")
    count_rho = model.count_share * rho
    evaluation = None
    evaluation_rho = 0.0
    if model.evaluate:
        if len(classes) != 2:
            raise UsageError("private evaluation is available for binary outcomes; name the positive values")
        evaluation_rho = model.evaluation_share * rho
        rows = float(contract.max_rows_per_resident)
        # a resident's rows may all fall in one bin; each row's x x^T w has Frobenius norm <= |x|^2 / 4,
        # and every encoded feature lies in [0, 1], so |x|^2 <= the number of features
        histogram_sensitivity, fisher_sensitivity = rows, rows * len(features) / 4.0
        half = evaluation_rho / 2.0
        evaluation = EvaluationPlan(bins=EVALUATION_BINS, histogram_sensitivity=histogram_sensitivity,
                                    histogram_noise_scale=histogram_sensitivity / math.sqrt(2.0 * half),
                                    fisher_sensitivity=fisher_sensitivity,
                                    fisher_noise_scale=fisher_sensitivity / math.sqrt(2.0 * half))
    step_rho = (rho - count_rho - evaluation_rho) / model.steps
    multiplier = 1.0 / math.sqrt(2.0 * step_rho)
    return ModelPlan(features=features, classes=classes, noise_multiplier=multiplier,
                     noise_scale=multiplier * model.clipping_norm,
                     count_noise_scale=1.0 / math.sqrt(2.0 * count_rho), steps=model.steps, evaluation=evaluation)
