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
from federation.privacy._accounting import (
    epsilon, gaussian_epsilon, gaussian_rho, rho_for_epsilon, rho_for_gaussian_epsilon,
)
from federation.privacy._cross_sector import CrossSectorPlan, plan_cross_sector
from federation.privacy._loss import PrivacyLoss
from federation.spec import CrossSectorSpec, ModelSpec, StudySpec, TableSpec
from schemas.contract import Column, Contract

__all__ = ["EVALUATION_BINS", "NEWTON_HESSIAN_SHARE", "NEWTON_TRACE_SHARE", "ContractSource", "EvaluationPlan", "ModelPlan", "StudyPlan",
           "TablePlan", "column_domain", "feature_names", "newton_hessian_rounds", "plan_study", "row_norm_squared",
           "scaling_bounds", "study_epsilon"]

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
#: see :attr:`EvaluationPlan.prediction_weight`
EVALUATION_PREDICTION_WEIGHT = 0.5
#: see :attr:`EvaluationPlan.curvature_weight`: the most one row moves the curvature rows, in L2
EVALUATION_CURVATURE_NORM = 0.5


@dataclass(frozen=True)
class EvaluationPlan:
    """Noisy score histograms (per class) and, for gradient descent, the Fisher information at the final
    parameters (Newton has its curvature already: ``fisher_noise_scale`` is None and no Fisher is released)."""

    bins: int
    histogram_sensitivity: float
    histogram_noise_scale: float
    fisher_sensitivity: float
    fisher_noise_scale: float | None
    #: the histograms' third row sums predicted probabilities per bin, times this weight (so a row moves it
    #: less than the counts, and the counts keep most of the precision)
    prediction_weight: float = 0.5
    #: rows 3 onwards sum p(1-p)·x per bin (one row per encoded feature), times this weight: how far each bin's
    #: predicted rate moves when the parameters move, so the calibration intervals can include the training
    #: noise (0: no such rows)
    curvature_weight: float = 0.0


#: Newton: the share of the model's budget spent on curvature matrices, and on the curvature's trace each
#: round (the rest goes to gradients). The curvature only shapes the steps — the fixed point is where the
#: noisy gradients average to zero — so it needs less.
NEWTON_HESSIAN_SHARE = 0.3
NEWTON_TRACE_SHARE = 0.03


@dataclass(frozen=True)
class ModelPlan:
    features: tuple[str, ...]
    classes: tuple[str, ...]
    #: gradient noise scale over the clipping norm
    noise_multiplier: float
    #: the Gaussian noise on each released gradient sum (per coordinate)
    noise_scale: float
    #: gradient descent: the noise on the resident count (None for Newton, which needs no count)
    count_noise_scale: float | None
    #: gradient releases per node (gradient descent: rounds x local steps; Newton: rounds)
    steps: int
    evaluation: EvaluationPlan | None = None
    optimizer: str = "gradient_descent"
    #: the L2 norm each resident's gradient is clipped to (the spec's, or Newton's choice from the contract)
    clipping_norm: float = 1.0
    rounds: int = 1
    #: Newton: the rounds (1-based) in which nodes also release their curvature, its L2 sensitivity and noise
    hessian_rounds: tuple[int, ...] = ()
    hessian_sensitivity: float = 0.0
    hessian_noise_scale: float = 0.0
    #: Newton: the curvature's trace, released every round (one number)
    trace_sensitivity: float = 0.0
    trace_noise_scale: float = 0.0
    #: the bound on one encoded row's squared L2 norm (features scaled to [0, 1], one-hot categories, intercept)
    row_norm_squared: float = 0.0
    #: each numeric feature's scaling to [0, 1]: (name, (low, high, "warn_range" or "range")), from the contract
    scaling: tuple[tuple[str, tuple[float, float, str]], ...] = ()


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
        """The ε one dataset is charged (cross-sector studies charge each dataset its own): the exact Gaussian
        curve's for a study of Gaussian releases only, else OpenDP's zCDP conversion."""
        rho = float(self.per_dataset[dataset].rho)
        return gaussian_epsilon(rho, self.spec.privacy.delta) if self.exact_gaussian else \
            epsilon(rho, self.spec.privacy.delta)

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
        m = self.model
        if m.optimizer == "newton":
            return {"counts_per_resident": m.steps + len(m.hessian_rounds), "noise_sd": m.noise_scale,
                    "in_words": f"{m.steps} noisy gradients, each ± {m.noise_scale:.2g} per coefficient (one sd), "
                                f"on gradients clipped per resident to norm {m.clipping_norm:.3g}; and "
                                f"{len(m.hessian_rounds)} noisy curvature matrices, ± {m.hessian_noise_scale:.2g} "
                                "per entry"}
        return {"counts_per_resident": m.steps, "noise_sd": m.noise_scale,
                "in_words": f"{m.steps} noisy model updates, each ± {m.noise_scale:.2g} per "
                            "coefficient (one sd), on gradients clipped per resident"}

    @property
    def exact_gaussian(self) -> bool:
        """A study made only of (continuous) Gaussian releases, calibrated to the exact Gaussian curve."""
        return self.cross_sector is None and self.spec.privacy.accounting == "exact_gaussian"

    def epsilon_zcdp(self, dataset: str | None = None) -> float:
        """ε of the charged ρ by the zCDP conversion: what the charge counts as against a budget set in ε."""
        loss = self.loss if dataset is None else self.per_dataset[dataset]
        return epsilon(float(loss.rho), self.spec.privacy.delta)

    def privacy_json(self) -> dict[str, Any]:
        rho = float(self.loss.rho)
        accounting = ("every release a Gaussian mechanism, their rho composed by OpenDP; epsilon is the exact "
                      "(epsilon, delta) curve of that composition (one Gaussian mechanism with mu^2 = 2 rho); "
                      "budgets and ledgers add rho, and epsilon_zcdp (OpenDP's zCDP conversion) is what this "
                      "charge counts as against a budget set in epsilon" if self.exact_gaussian else
                      "zCDP composed by OpenDP; (epsilon, delta) by OpenDP's zCDP-to-approxDP conversion")
        return {
            "unit": "resident",
            "rho": rho,
            "epsilon": self.epsilon,
            "epsilon_zcdp": self.epsilon_zcdp(),
            "delta": self.spec.privacy.delta,
            "accounting": accounting,
            "per_dataset": {ds: {"rho": float(loss.rho), "rho_units": loss.units} for ds, loss in self.per_dataset.items()},
            **self.mechanism,
        }


def study_epsilon(spec: StudySpec, loss: PrivacyLoss) -> float:
    """The ε a study's charge of ``loss`` means for that study alone: the exact Gaussian curve's when the spec is
    calibrated to it (a horizontal study of Gaussian releases), else OpenDP's zCDP conversion. Against a budget
    set in ε the same charge counts as :func:`federation.privacy.epsilon` of its ρ (zCDP), which is larger."""
    rho, delta = float(loss.rho), spec.privacy.delta
    if spec.cross_sector is None and spec.privacy.accounting == "exact_gaussian":
        return gaussian_epsilon(rho, delta)
    return epsilon(rho, delta)


class ContractSource(Protocol):
    def get(self, name: str) -> Contract: ...


def plan_study(spec: StudySpec, contracts: ContractSource | Contract) -> StudyPlan:
    """Noise scales and each dataset's exact charge, from the spec and the contracts it names (a horizontal
    study may be given its one contract directly)."""
    # A hair below the budget, so that OpenDP's conservative rounding and the ledger's rounding up
    # to whole units still leave the charged (ε, δ) within what the study asked for.
    if spec.cross_sector is not None:
        if isinstance(contracts, Contract):
            raise UsageError("a cross-sector study is planned against every contract it names, not one")
        # discrete Gaussians under encryption, charged per party: the zCDP conversion, valid for any mechanism
        target = rho_for_epsilon(spec.privacy.epsilon, spec.privacy.delta) * (1 - 1e-6)
        return _plan_cross_sector(spec, spec.cross_sector, contracts, target)
    # only Gaussian releases: calibrated to the exact Gaussian curve (about 7 % less noise than zCDP's at ε = 1),
    # unless the spec predates it
    exact = spec.privacy.accounting == "exact_gaussian"
    to_rho = rho_for_gaussian_epsilon if exact else rho_for_epsilon
    target = to_rho(spec.privacy.epsilon, spec.privacy.delta) * (1 - 1e-6)
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
        rho = gaussian_rho(model.clipping_norm, model.noise_scale, model.steps)
        mechanism = {"mechanism": "gaussian", "optimizer": model.optimizer,
                     "noise_multiplier": model.noise_multiplier, "noise_scale": model.noise_scale,
                     "clipping_norm": model.clipping_norm, "steps": model.steps, "rounds": model.rounds}
        if model.count_noise_scale is not None:
            rho += gaussian_rho(1.0, model.count_noise_scale)
            mechanism["count_noise_scale"] = model.count_noise_scale
        if model.hessian_rounds:
            rho += (gaussian_rho(model.hessian_sensitivity, model.hessian_noise_scale, len(model.hessian_rounds))
                    + gaussian_rho(model.trace_sensitivity, model.trace_noise_scale, model.rounds))
            mechanism |= {"hessian_rounds": list(model.hessian_rounds),
                          "hessian_sensitivity": model.hessian_sensitivity,
                          "hessian_noise_scale": model.hessian_noise_scale,
                          "trace_sensitivity": model.trace_sensitivity, "trace_noise_scale": model.trace_noise_scale}
        if model.evaluation is not None:
            e = model.evaluation
            rho += gaussian_rho(e.histogram_sensitivity, e.histogram_noise_scale)
            if e.fisher_noise_scale is not None:
                rho += gaussian_rho(e.fisher_sensitivity, e.fisher_noise_scale)
            mechanism["evaluation"] = {"bins": e.bins, "histogram_noise_scale": e.histogram_noise_scale,
                                       "fisher_noise_scale": e.fisher_noise_scale,
                                       "curvature_weight": e.curvature_weight}
        table = None
    loss = PrivacyLoss.from_rho(rho)
    to_epsilon = gaussian_epsilon if exact else epsilon
    return StudyPlan(spec=spec, loss=loss, epsilon=to_epsilon(float(loss.rho), spec.privacy.delta),
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
        if name in (model.categorical or ()):
            if column.type != "integer":
                raise UsageError(f"feature {name!r} is {column.type}, not an integer: only integer features can be "
                                 "taken as categories (category columns already are)")
            if column.range is None or column.range[1] - column.range[0] + 1 > _MAX_DOMAIN:  # type: ignore[operator]
                raise UsageError(f"feature {name!r} has more than {_MAX_DOMAIN} values in its contract range (or "
                                 "none): it cannot be taken as categories")
            names += [f"{name}={v}" for v in column_domain(column)]
        elif column.type in ("integer", "number"):
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


def scaling_bounds(model: ModelSpec, contract: Contract) -> tuple[tuple[str, tuple[float, float, str]], ...]:
    """How each numeric feature is scaled to [0, 1] (values outside are clipped): by the contract's plausible
    range (``warn_range``) when it has one, else by its hard ``range`` — public, so scaling costs no privacy.
    A wide honest range flattens a feature (0–99,999 for a value mostly under 5,000 puts nearly every row near
    0), and its effect then drowns in the noise: a contract should give such a column a ``warn_range``."""
    out = []
    for name in model.features:
        column = _column(contract, name, "feature")
        if column.type in ("integer", "number") and name not in (model.categorical or ()):
            bounds, source = (column.warn_range, "warn_range") if column.warn_range else (column.range, "range")
            if bounds is None:
                raise UsageError(f"feature {name!r} needs a range in the contract to be scaled")
            out.append((name, (float(bounds[0]), float(bounds[1]), source)))  # type: ignore[arg-type]
    return tuple(out)


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


def row_norm_squared(model: ModelSpec) -> float:
    """The most one encoded row's squared L2 norm can be: each feature column adds at most 1 (a number scaled
    to [0, 1], a boolean, or the one-hot of a category), the intercept 1."""
    return float(len(model.features) + 1)


def _plan_model(model: ModelSpec, contract: Contract, rho: float) -> ModelPlan:
    features = feature_names(model, contract)
    classes = model_classes(model, contract)
    if len(classes) < 2:
        raise UsageError("a model needs at least two outcome classes")
    rows = float(contract.max_rows_per_resident)
    newton = model.method == "newton"
    evaluation = None
    evaluation_rho = 0.0
    if model.evaluate:
        if len(classes) != 2:
            raise UsageError("private evaluation is available for binary outcomes; name the positive values")
        evaluation_rho = model.evaluation_share * rho
        # a resident's rows may all fall in one bin, each adding 1 to a count, (weight x) its predicted
        # probability to the bin's sum and (weight x) p(1-p)·x to the curvature rows, |p(1-p)·x| <= |x| / 4;
        # each row's x x^T w has Frobenius norm <= |x|^2 / 4, and every encoded feature lies in [0, 1], so
        # |x|^2 <= the number of features
        curvature_weight = EVALUATION_CURVATURE_NORM * 4.0 / math.sqrt(row_norm_squared(model))
        histogram_sensitivity = rows * math.sqrt(1.0 + EVALUATION_PREDICTION_WEIGHT ** 2
                                                 + EVALUATION_CURVATURE_NORM ** 2)
        fisher_sensitivity = rows * len(features) / 4.0
        if newton:   # the curvature is known from training: all of the evaluation's share goes to the histograms
            evaluation = EvaluationPlan(bins=EVALUATION_BINS, histogram_sensitivity=histogram_sensitivity,
                                        histogram_noise_scale=histogram_sensitivity / math.sqrt(2.0 * evaluation_rho),
                                        fisher_sensitivity=0.0, fisher_noise_scale=None,
                                        prediction_weight=EVALUATION_PREDICTION_WEIGHT,
                                        curvature_weight=curvature_weight)
        else:
            half = evaluation_rho / 2.0
            evaluation = EvaluationPlan(bins=EVALUATION_BINS, histogram_sensitivity=histogram_sensitivity,
                                        histogram_noise_scale=histogram_sensitivity / math.sqrt(2.0 * half),
                                        fisher_sensitivity=fisher_sensitivity,
                                        fisher_noise_scale=fisher_sensitivity / math.sqrt(2.0 * half),
                                        prediction_weight=EVALUATION_PREDICTION_WEIGHT,
                                        curvature_weight=curvature_weight)
    if newton:
        return _plan_newton(model, features, classes, rows, rho - evaluation_rho, evaluation,
                            scaling_bounds(model, contract))
    clipping_norm = model.clipping_norm or 1.0
    count_rho = model.count_share * rho
    steps = model.round_count * model.local_steps
    step_rho = (rho - count_rho - evaluation_rho) / steps
    multiplier = 1.0 / math.sqrt(2.0 * step_rho)
    return ModelPlan(features=features, classes=classes, noise_multiplier=multiplier,
                     noise_scale=multiplier * clipping_norm, count_noise_scale=1.0 / math.sqrt(2.0 * count_rho),
                     steps=steps, evaluation=evaluation, optimizer="gradient_descent", clipping_norm=clipping_norm,
                     rounds=model.round_count, row_norm_squared=row_norm_squared(model),
                     scaling=scaling_bounds(model, contract))


def newton_hessian_rounds(rounds: int) -> tuple[int, ...]:
    """Rounds (1-based) in which Newton releases curvature: the first, and a third of the way in (by then the
    parameters are near the optimum, where the curvature that matters for the last steps is)."""
    return tuple(sorted({1, 1 + rounds // 3}))


def _plan_newton(model: ModelSpec, features: tuple[str, ...], classes: tuple[str, ...], rows: float, rho: float,
                 evaluation: EvaluationPlan | None,
                 scaling: tuple[tuple[str, tuple[float, float, str]], ...]) -> ModelPlan:
    norm_squared = row_norm_squared(model)
    binary = len(classes) == 2
    # a row's residual (probabilities minus the outcome) has norm <= 1 (binary) or sqrt(2) (multinomial); its
    # curvature (diag(p) - p p^T) has Frobenius norm <= 1/4 (binary) or 1/sqrt(2) (its largest eigenvalue is at
    # most 1/2 and its trace at most 1)
    largest_gradient = rows * (1.0 if binary else math.sqrt(2.0)) * math.sqrt(norm_squared)
    clipping_norm = model.clipping_norm or largest_gradient / 2.0
    hessian_sensitivity = rows * norm_squared * (0.25 if binary else math.sqrt(0.5))
    # its trace, p(1-p) |x|^2 or (sum p_k - p_k^2) |x|^2 <= (K-1)/K |x|^2 per row
    trace_sensitivity = rows * norm_squared * (0.25 if binary else (len(classes) - 1) / len(classes))
    rounds = model.round_count
    hessian_rounds = newton_hessian_rounds(rounds)
    gradient_rho = (1.0 - NEWTON_HESSIAN_SHARE - NEWTON_TRACE_SHARE) * rho / rounds
    hessian_rho = NEWTON_HESSIAN_SHARE * rho / len(hessian_rounds)
    trace_rho = NEWTON_TRACE_SHARE * rho / rounds
    multiplier = 1.0 / math.sqrt(2.0 * gradient_rho)
    return ModelPlan(features=features, classes=classes, noise_multiplier=multiplier,
                     noise_scale=multiplier * clipping_norm, count_noise_scale=None, steps=rounds,
                     evaluation=evaluation, optimizer="newton", clipping_norm=clipping_norm, rounds=rounds,
                     hessian_rounds=hessian_rounds, hessian_sensitivity=hessian_sensitivity,
                     hessian_noise_scale=hessian_sensitivity / math.sqrt(2.0 * hessian_rho),
                     trace_sensitivity=trace_sensitivity,
                     trace_noise_scale=trace_sensitivity / math.sqrt(2.0 * trace_rho),
                     row_norm_squared=norm_squared, scaling=scaling)
