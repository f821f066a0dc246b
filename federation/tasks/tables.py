"""DP tables on a node: exact counts over the plan's public cells (noise is added by the caller)."""

from __future__ import annotations

from typing import Any

from typing import TYPE_CHECKING

import numpy as np

from federation.privacy import TablePlan
from federation.spec import TransitionSpec

if TYPE_CHECKING:
    import pandas as pd


def transition_rows(frame: pd.DataFrame, spec: TransitionSpec) -> pd.DataFrame:
    """One row per move of a resident from one time value to the next: (by, state_from, state_to)."""
    import pandas as pd

    resident = frame.columns[0] if "_resident" not in frame else "_resident"
    columns = [resident, spec.time, spec.state] + ([spec.by] if spec.by else [])
    data = frame[columns].dropna().sort_values([resident, spec.time])
    following = data.groupby(resident, sort=False)[[spec.time, spec.state]].shift(-1)
    step = following[spec.time] - data[spec.time]
    consecutive = (step == 1) if pd.api.types.is_numeric_dtype(data[spec.time]) else step.notna()
    moves = pd.DataFrame({f"{spec.state}_from": data[spec.state][consecutive],
                          f"{spec.state}_to": following[spec.state][consecutive]})
    if spec.by:
        moves.insert(0, spec.by, data[spec.by][consecutive])
    return moves


def cell_counts(rows: pd.DataFrame, plan: TablePlan) -> np.ndarray:
    """Counts of rows per plan cell, in the plan's cell order; values outside the domain are dropped."""
    import pandas as pd

    index: dict[tuple[Any, ...], int] = {cell: i for i, cell in enumerate(plan.cells)}
    data = rows[list(plan.columns)].dropna()
    counts = np.zeros(len(plan.cells))
    if data.empty:
        return counts
    keys = pd.Series(list(zip(*[_plain(data[c]) for c in plan.columns])))
    positions = keys.map(index).dropna().astype(int).to_numpy()
    np.add.at(counts, positions, 1.0)
    return counts


def _plain(values: pd.Series) -> list[Any]:
    """Cell values in the types the plan uses (ints for integer columns, str for categories)."""
    import pandas as pd

    if pd.api.types.is_float_dtype(values.dtype) and (values == values.round()).all():
        return list(values.astype("int64").tolist())
    return list(values.astype(object).tolist())
