"""Study task kinds: what a node computes on its own residents, and how the server combines it."""

from federation.tasks.logreg import (
    Design, encode, evaluation_statistics, local_training, newton_fit_in_process, newton_statistics, predict_proba,
)
from federation.tasks.newton import NewtonSolver, feature_columns, from_upper_triangle, upper_triangle
from federation.tasks.tables import cell_counts, transition_rows

__all__ = ["Design", "NewtonSolver", "cell_counts", "encode", "evaluation_statistics", "feature_columns", "from_upper_triangle",
           "local_training", "newton_fit_in_process", "newton_statistics", "predict_proba", "transition_rows", "upper_triangle"]
