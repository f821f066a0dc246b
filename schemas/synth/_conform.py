"""Make a generated frame obey its contract, add controlled messiness, and write it as Parquet.

Everything here is derived from the contract: column order and Arrow types, which columns may get
nulls and at what rate (``max_null_rate``), and where outliers go (between ``warn_range`` and
``range``). The generator keeps its values inside ``warn_range``, so every value outside it and
every null is one this module put there and counted — the counts are the truth a validation
report must reproduce.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from schemas.contract import Column, Contract

_ARROW = {
    "identity_code": pa.string(),
    "string": pa.string(),
    "category": pa.string(),
    "integer": pa.int32(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
}

# Share of a column's max_null_rate that messiness uses: below 1 stays quiet, above 1 warns.
_NULL_FACTORS = (0.3, 0.6, 0.9, 1.6)
_OUTLIER_RATE = 0.002


def arrow_schema(contract: Contract) -> pa.Schema:
    """The Arrow schema of a contract's extract."""
    return pa.schema([pa.field(c.name, _ARROW[c.type], nullable=c.nullable) for c in contract.expanded_columns])


def add_messiness(frame: pd.DataFrame, contract: Contract, level: float,
                  rng: np.random.Generator) -> dict[str, dict[str, int]]:
    """Inject nulls and plausible-range outliers in place; return exact counts per column."""
    counts: dict[str, dict[str, int]] = {}
    if level <= 0 or frame.empty:
        return counts
    n = len(frame)
    for column in contract.expanded_columns:
        if column.type == "boolean" and "_rf_" in column.name:
            continue  # risk factors stay clean: they carry the outcome model's truth
        entry: dict[str, int] = {}
        taken = np.zeros(n, dtype=bool)
        if column.warn_range is not None and column.range is not None:
            chosen = rng.random(n) < _OUTLIER_RATE * level
            _place_outliers(frame, column, chosen, rng)
            taken |= chosen
        if column.nullable and column.max_null_rate:
            factor = _NULL_FACTORS[int(rng.integers(len(_NULL_FACTORS)))]
            chosen = (rng.random(n) < column.max_null_rate * factor * level) & ~taken
            frame[column.name] = frame[column.name].mask(chosen)
        outside = _outside_warn_range(frame[column.name], column)
        nulls = int(frame[column.name].isna().sum())
        if nulls:
            entry["null"] = nulls
        if outside:
            entry["outside_warn_range"] = outside
        if entry:
            counts[column.name] = entry
    return counts


def _place_outliers(frame: pd.DataFrame, column: Column, chosen: np.ndarray, rng: np.random.Generator) -> None:
    assert column.warn_range is not None and column.range is not None
    k = int(chosen.sum())
    if k == 0:
        return
    values: object
    if column.type == "date":
        first, plausible = column.range[0], column.warn_range[0]  # implausibly early dates
        assert isinstance(first, dt.date) and isinstance(plausible, dt.date)
        span = (plausible - first).days
        values = pd.Timestamp(first) + pd.to_timedelta(rng.integers(0, max(span, 1), k), unit="D")
    else:
        plausible_max, hard_max = column.warn_range[1], column.range[1]
        assert isinstance(plausible_max, (int, float)) and isinstance(hard_max, (int, float))
        lo, hi = float(plausible_max), float(hard_max)
        drawn = rng.uniform(lo, hi, k)
        shifted = np.floor(drawn) + 1 if column.type == "integer" else np.round(drawn, 1) + 0.1
        values = np.minimum(shifted, hi)
    series = pd.to_datetime(frame[column.name]) if column.type == "date" else frame[column.name].astype(float)
    series[chosen] = values
    frame[column.name] = series


def _outside_warn_range(values: pd.Series, column: Column) -> int:
    if column.warn_range is None:
        return 0
    present = values.dropna()
    lo, hi = column.warn_range
    if column.type == "date":
        stamps = pd.to_datetime(present)
        lo_t, hi_t = pd.Timestamp(lo), pd.Timestamp(hi)
        return int(((stamps < lo_t) | (stamps > hi_t)).sum())
    numbers = present.astype(float)
    return int(((numbers < float(lo)) | (numbers > float(hi))).sum())  # type: ignore[arg-type]


def to_table(frame: pd.DataFrame, contract: Contract) -> pa.Table:
    """Order and type the generated columns exactly as the contract says; refuse any mismatch."""
    expected = list(contract.column_names)
    if sorted(frame.columns) != sorted(expected):
        missing = sorted(set(expected) - set(frame.columns))
        extra = sorted(set(frame.columns) - set(expected))
        raise ValueError(f"generator and contract {contract.label} disagree: missing {missing}, extra {extra}")
    arrays = []
    for column in contract.expanded_columns:
        values = frame[column.name]
        if column.type == "date":
            values = pd.to_datetime(values).dt.date
            arrays.append(pa.array(values.where(values.notna(), None), type=pa.date32()))
            continue
        if column.type == "integer":
            values = values.astype("Int64")
        elif column.type == "boolean":
            values = values.astype("boolean")
        elif column.type == "number":
            values = values.astype("Float64")
        arrays.append(pa.array(values, type=_ARROW[column.type], from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=arrow_schema(contract))


def write_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")


def iso(value: dt.date) -> str:
    return value.isoformat()
