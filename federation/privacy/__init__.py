"""Differential privacy for Tillit: the only package that draws noise or computes privacy loss.

Nodes and the coordinator both use it, so the cost a node recomputes from a spec is the cost the
coordinator previewed and charged.
"""

from federation.privacy._accounting import epsilon, gaussian_rho, rho_for_epsilon
from federation.privacy._loss import RHO_UNITS_PER_RHO, PrivacyLoss
from federation.privacy._noise import gaussian_release
from federation.privacy._plan import (
    EVALUATION_BINS, EvaluationPlan, ModelPlan, StudyPlan, TablePlan, column_domain, feature_names, model_classes, plan_study,
)

__all__ = [
    "EVALUATION_BINS",
    "RHO_UNITS_PER_RHO",
    "EvaluationPlan",
    "ModelPlan",
    "PrivacyLoss",
    "StudyPlan",
    "TablePlan",
    "column_domain",
    "epsilon",
    "feature_names",
    "gaussian_release",
    "gaussian_rho",
    "model_classes",
    "plan_study",
    "rho_for_epsilon",
]
