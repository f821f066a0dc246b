"""Validating a 1,000,000-row extract with the full contract suite: Great Expectations vs pandera.

Both run the same checks, derived from the same contract (``validation.contract_checks``), on the
same frame (already read, pseudonymised and converted), in the same process. The goal is GX
within 1.5x of pandera. Run:  ``.venv/bin/python -m benchmarks.validation_vs_pandera [--rows N]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks._common import median_seconds, row
from nodes.extract import pseudonymise, read_extract
from nodes.secret import ephemeral_secret
from schemas import Contract, ContractCatalog
from schemas.synth import SynthConfig, synthesize
from validation import Source, contract_checks, validate_frame
from validation._conformance import conform
from validation._suite import ROWS_PER_RESIDENT


def pandera_schema(contract: Contract) -> Any:
    """The contract's checks expressed in pandera, one for one (severity 'warn' -> raise_warning)."""
    import pandera.pandas as pa

    per_column: dict[str, list[Any]] = defaultdict(list)
    required: set[str] = set()
    unique: list[str] = []
    min_rows = 0
    for check in contract_checks(contract):
        kw, warn = check.kwargs, check.severity == "warn"
        column = kw.get("column")
        if check.kind == "not_null":
            required.add(column)
        elif check.kind == "null_rate":
            limit = 1 - kw["mostly"]
            per_column[column].append(pa.Check(lambda s, r=limit: s.isna().mean() <= r, element_wise=False,
                                               ignore_na=False, raise_warning=True))
        elif check.kind in ("range", "plausible_range", "rows_per_resident"):
            per_column[column].append(pa.Check.in_range(kw["min_value"], kw["max_value"], raise_warning=warn))
        elif check.kind == "categories":
            per_column[column].append(pa.Check.isin(kw["value_set"], raise_warning=warn))
        elif check.kind == "max_length":
            per_column[column].append(pa.Check.str_length(kw["min_value"], kw["max_value"]))
        elif check.kind == "key_unique":
            unique = list(check.columns)
        elif check.kind == "row_count":
            min_rows = kw["min_value"]
    names = [*contract.column_names, *([ROWS_PER_RESIDENT] if ROWS_PER_RESIDENT in per_column else [])]
    columns = {n: pa.Column(nullable=n not in required, checks=per_column.get(n, [])) for n in names}
    return pa.DataFrameSchema(columns, unique=unique or None,
                              checks=[pa.Check(lambda df: len(df) >= min_rows, element_wise=False)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    contract = ContractCatalog().get("health_care")
    with tempfile.TemporaryDirectory() as tmp:
        residents = max(2_000, int(args.rows / 5.8) + 1)  # about 5.8 yearly rows per resident
        synthesize(SynthConfig(out=Path(tmp), residents=residents, seed=1))
        source = Path(tmp) / "espoo" / "health_care.parquet"
        full = pd.read_parquet(source).head(args.rows)
        path = Path(tmp) / "extract.parquet"
        full.to_parquet(path, index=False)
        t = time.perf_counter()
        extract = read_extract(path)
        read_s = time.perf_counter() - t
        secret = ephemeral_secret()
        t = time.perf_counter()
        frame, identity = pseudonymise(extract.frame, contract, secret.pseudonym_key)
        pseudo_s = time.perf_counter() - t
        shaped = conform(frame, contract).frame
        ident = shaped[contract.identifier]
        shaped = shaped.assign(**{ROWS_PER_RESIDENT: ident.groupby(ident, sort=False).transform("size").astype("float64")})
        src = Source(path.name, "parquet", extract.sha256, extract.size_bytes)

        # warm up both libraries (imports, first-call caches) outside the timed runs
        validate_frame(frame.head(1000), contract, identity, src, {})
        schema = pandera_schema(contract)
        _pandera(schema, shaped.head(1000))

        gx_times = []
        for _ in range(args.repeats):
            _, timings = validate_frame(frame, contract, identity, src, {})
            gx_times.append(timings.great_expectations)
            conform_s = timings.conformance
        gx = sorted(gx_times)[len(gx_times) // 2]
        pandera, _ = median_seconds(lambda: _pandera(schema, shaped), args.repeats)
        checks = len(contract_checks(contract))
    print(f"validation of {args.rows:,} rows x {len(contract.column_names)} columns, "
          f"{checks} GX expectations (median of {args.repeats})")
    print(row("pandera, same checks on the same frame (baseline)", pandera))
    print(row("Great Expectations suite (context + suite + run)", gx, pandera))
    print(row("read Parquet", read_s, pandera))
    print(row("pseudonymise identity codes (keyed hash)", pseudo_s, pandera))
    print(row("type conformance (tillit)", conform_s, pandera))
    print(f"  GX / pandera ratio: {gx / pandera:.2f} (goal <= 1.5)")


def _pandera(schema: Any, frame: pd.DataFrame) -> None:
    import pandera.errors

    try:
        schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors:
        pass


if __name__ == "__main__":
    main()
