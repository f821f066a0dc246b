"""Helpers that write broken copies of a generated silo."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def write_frame(frame: pd.DataFrame, path: Path) -> Path:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return path


def mutated(source: Path, target: Path, change: Callable[[pd.DataFrame], pd.DataFrame]) -> Path:
    return write_frame(change(pd.read_parquet(source)), target)
