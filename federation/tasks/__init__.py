"""Study task kinds: what a node computes on its own residents, and how the server combines it."""

from federation.tasks.logreg import Design, encode, evaluation_statistics, local_training, predict_proba
from federation.tasks.tables import cell_counts, transition_rows

__all__ = ["Design", "cell_counts", "encode", "evaluation_statistics", "local_training", "predict_proba", "transition_rows"]
