"""Structure and types: which columns are there, and which values do not have the contract's type.

The frame that comes out has, for every contract column present, exactly the dtype Great
Expectations evaluates vectorised — int64 (no nulls) or float64 (nulls as NaN) for numbers,
datetime64[ns] for dates, the string dtype for text, bool/boolean for flags. (GX's pandas
``between`` falls back to a Python call per value for any other numeric dtype, e.g. ``Int16``:
~10x slower on a million rows.) Values that cannot be converted are counted, never shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from schemas.contract import Column, Contract

_TRUE = {"true", "t", "1", "yes"}
_FALSE = {"false", "f", "0", "no"}


@dataclass
class Conformance:
    frame: pd.DataFrame
    missing_columns: list[str] = field(default_factory=list)
    extra_columns: list[str] = field(default_factory=list)
    #: column -> number of non-null values that do not have the contract's type
    type_violations: dict[str, int] = field(default_factory=dict)
    #: column -> how it was stored, when the storage type itself is wrong
    stored_as: dict[str, str] = field(default_factory=dict)


def conform(frame: pd.DataFrame, contract: Contract) -> Conformance:
    expected = contract.column_names
    present = [c for c in expected if c in frame.columns]
    result = Conformance(
        frame=pd.DataFrame(index=frame.index),
        missing_columns=[c for c in expected if c not in frame.columns],
        extra_columns=[str(c) for c in frame.columns if c not in set(expected)],
    )
    converted = {}
    for name in present:
        column = contract.column(name)
        values, bad = _convert(frame[name], column)
        converted[name] = values
        if bad:
            result.type_violations[name] = bad
            result.stored_as[name] = str(frame[name].dtype)
    result.frame = pd.DataFrame(converted, index=frame.index)
    return result


def _convert(values: pd.Series, column: Column) -> tuple[pd.Series, int]:
    """The column in its GX-friendly dtype and the count of values that are not of the right type."""
    present = values.notna()
    kind = column.type
    if kind in ("integer", "number"):
        if pd.api.types.is_bool_dtype(values.dtype):
            return pd.Series(np.nan, index=values.index), int(present.sum())
        numbers = pd.to_numeric(values, errors="coerce") if not pd.api.types.is_numeric_dtype(values.dtype) else values
        numbers = numbers.astype("float64")
        bad = present & numbers.isna()
        if kind == "integer":
            fractional = numbers.notna() & (numbers != np.floor(numbers))
            bad |= fractional
            numbers = numbers.mask(fractional)
        if kind == "integer" and not numbers.isna().any():
            return numbers.astype("int64"), int(bad.sum())
        return numbers, int(bad.sum())
    if kind == "boolean":
        if pd.api.types.is_bool_dtype(values.dtype):
            return values, 0
        if pd.api.types.is_numeric_dtype(values.dtype):
            ok = values.isin([0, 1]) | ~present
            flags = values.where(ok).map({0: False, 1: True}, na_action="ignore")
            return flags.astype("boolean"), int((~ok).sum())
        text = values.astype("str").str.strip().str.lower()
        flags = text.map(lambda v: True if v in _TRUE else (False if v in _FALSE else None), na_action="ignore")
        bad = present & flags.isna()
        return flags.astype("boolean"), int(bad.sum())
    if kind == "date":
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            return values.astype("datetime64[ns]"), 0
        if pd.api.types.is_numeric_dtype(values.dtype):
            return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]"), int(present.sum())
        if values.dtype == object and _holds_dates(values):
            stamps = pd.to_datetime(values, errors="coerce")
            return stamps.astype("datetime64[ns]"), int((present & stamps.isna()).sum())
        stamps = pd.to_datetime(values.astype("str").where(present), format="ISO8601", errors="coerce")
        bad = present & stamps.isna()
        return stamps.astype("datetime64[ns]"), int(bad.sum())
    if kind == "identity_code":
        # Pseudonyms only matter for equality (keys, rows per resident): GX gets a dense number per
        # resident, far cheaper to compare than 32-character digests.
        index, _ = pd.factorize(values, use_na_sentinel=True)
        ids = pd.Series(index, index=values.index, dtype="float64").mask(index < 0)
        return (ids.astype("int64") if (index >= 0).all() else ids), 0
    # string, category: text
    if values.dtype == "str":
        if kind == "category":
            # GX copies the whole frame once per null-filtered expectation; categorical columns copy
            # small integer codes instead of strings (and hash cheaply for GX's batch fingerprint).
            return values.astype("category"), 0
        return values, 0
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return pd.Series(pd.NA, index=values.index, dtype="str"), int(present.sum())
    is_text = values.map(lambda v: isinstance(v, str), na_action="ignore").fillna(True).astype(bool)
    bad = present & ~is_text
    text = values.where(is_text).astype("str")
    return (text.astype("category") if kind == "category" else text), int(bad.sum())


def _holds_dates(values: pd.Series) -> bool:
    """Parquet date32 columns arrive as Python ``date`` objects."""
    import datetime as dt

    first = values.first_valid_index()
    return first is not None and isinstance(values[first], dt.date)
