"""Differential privacy for Tillit: the only package that draws noise or computes privacy loss.

Nodes and the coordinator both use it, so the cost a node recomputes from a spec is the cost the
coordinator previewed and charged, and the budget a node enforces is checked by the same arithmetic
as the coordinator's (:mod:`federation.privacy.budget`).

- ``_noise``: the only noise source (OpenDP's Gaussian mechanism)
- ``_accounting``: ρ of Gaussian releases, composition (OpenDP); (ε, δ) by OpenDP's zCDP conversion (budgets)
  and by the exact Gaussian curve (a study of Gaussian releases only)
- ``_loss``: :class:`PrivacyLoss`, exact ledger amounts
- ``budget``: :class:`Balance` — remaining, fits, caps from ε, the JSON form of an amount
- ``_calibration``: from a study spec to noise scales and the ρ each dataset is charged
- ``_cross_sector``: the same for a cross-sector count study (who adds which noise, who is charged what)
"""

from federation.privacy._accounting import (
    epsilon, gaussian_epsilon, gaussian_rho, integer_gaussian_rho, rho_for_epsilon, rho_for_gaussian_epsilon,
)
from federation.privacy._loss import RHO_UNITS_PER_RHO, PrivacyLoss
from federation.privacy._cross_sector import CrossSectorNoise, CrossSectorPlan
from federation.privacy._noise import gaussian_release, integer_noise
from federation.privacy.budget import Balance, amount_json, make_cap
from federation.privacy._calibration import (
    EVALUATION_BINS, NEWTON_HESSIAN_SHARE, NEWTON_TRACE_SHARE, ContractSource, EvaluationPlan, ModelPlan, StudyPlan, TablePlan, column_domain, feature_names,
    model_classes, newton_hessian_rounds, plan_study, row_norm_squared, study_epsilon,
)

__all__ = [
    "EVALUATION_BINS",
    "NEWTON_HESSIAN_SHARE",
    "NEWTON_TRACE_SHARE",
    "Balance",
    "ContractSource",
    "CrossSectorNoise",
    "CrossSectorPlan",
    "RHO_UNITS_PER_RHO",
    "EvaluationPlan",
    "ModelPlan",
    "PrivacyLoss",
    "StudyPlan",
    "TablePlan",
    "amount_json",
    "column_domain",
    "epsilon",
    "feature_names",
    "gaussian_epsilon",
    "gaussian_release",
    "gaussian_rho",
    "integer_gaussian_rho",
    "integer_noise",
    "make_cap",
    "model_classes",
    "newton_hessian_rounds",
    "plan_study",
    "rho_for_epsilon",
    "rho_for_gaussian_epsilon",
    "row_norm_squared",
    "study_epsilon",
]
