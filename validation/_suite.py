"""The expectation suite of a contract: one check per contract clause, with its severity.

:func:`contract_checks` is pure (no GX import) so the suite can be listed, documented and tested
cheaply; :func:`to_expectations` turns it into Great Expectations objects only when a run needs it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from schemas.contract import Bound, Column, Contract, Severity

#: derived column holding, per row, how many rows its resident has in the extract
ROWS_PER_RESIDENT = "_rows_per_resident"


@dataclass(frozen=True)
class CheckSpec:
    """One check of the suite. ``columns`` are the contract columns it needs."""

    id: str
    kind: str
    severity: Severity
    expectation: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    columns: tuple[str, ...] = ()
    description: str = ""

    @property
    def column(self) -> str | None:
        return self.columns[0] if len(self.columns) == 1 else None


def contract_checks(contract: Contract) -> list[CheckSpec]:
    """Every Great Expectations check the contract implies, in a stable order."""
    checks = [
        CheckSpec(
            id="table.row_count", kind="row_count", severity="block",
            expectation="ExpectTableRowCountToBeBetween", kwargs={"min_value": contract.min_rows},
            description=f"the extract has at least {contract.min_rows} row(s)",
        )
    ]
    for column in contract.expanded_columns:
        checks.extend(_column_checks(column))
    key = tuple(contract.key)
    if len(key) == 1:
        checks.append(CheckSpec(
            id="key.unique", kind="key_unique", severity="block",
            expectation="ExpectColumnValuesToBeUnique", kwargs={"column": key[0]}, columns=key,
            description=f"no two rows share the key ({key[0]})",
        ))
    else:
        checks.append(CheckSpec(
            id="key.unique", kind="key_unique", severity="block",
            expectation="ExpectCompoundColumnsToBeUnique", kwargs={"column_list": list(key)}, columns=key,
            description=f"no two rows share the key ({', '.join(key)})",
        ))
    if contract.max_rows_per_resident > 1:
        checks.append(CheckSpec(
            id="resident.max_rows", kind="rows_per_resident", severity="block",
            expectation="ExpectColumnValuesToBeBetween",
            kwargs={"column": ROWS_PER_RESIDENT, "min_value": 1, "max_value": contract.max_rows_per_resident},
            columns=(contract.identifier,),
            description=f"no resident contributes more than {contract.max_rows_per_resident} rows",
        ))
    return checks


def _column_checks(column: Column) -> list[CheckSpec]:
    name = column.name
    checks = []
    if not column.nullable and column.type != "identity_code":  # the identity check counts missing codes
        checks.append(CheckSpec(
            id=f"{name}.not_null", kind="not_null", severity="block",
            expectation="ExpectColumnValuesToNotBeNull", kwargs={"column": name}, columns=(name,),
            description="required: no missing values",
        ))
    elif column.max_null_rate is not None:
        checks.append(CheckSpec(
            id=f"{name}.null_rate", kind="null_rate", severity="warn",
            expectation="ExpectColumnValuesToNotBeNull",
            kwargs={"column": name, "mostly": round(1.0 - column.max_null_rate, 10)}, columns=(name,),
            description=f"at most {column.max_null_rate:.1%} missing",
        ))
    if column.range is not None:
        checks.append(_between(column, column.range, "range", column.on_violation, "within the allowed range"))
    if column.warn_range is not None:
        checks.append(_between(column, column.warn_range, "plausible_range", "warn", "within the plausible range"))
    if column.categories is not None:
        checks.append(CheckSpec(
            id=f"{name}.categories", kind="categories", severity=column.on_violation,
            expectation="ExpectColumnValuesToBeInSet",
            kwargs={"column": name, "value_set": list(column.categories)}, columns=(name,),
            description=f"one of {len(column.categories)} allowed categories",
        ))
    if column.max_length is not None and column.type != "identity_code":  # an opaque key's length is checked
        checks.append(CheckSpec(                                           # before it is hashed
            id=f"{name}.max_length", kind="max_length", severity="block",
            expectation="ExpectColumnValueLengthsToBeBetween",
            kwargs={"column": name, "min_value": 1, "max_value": column.max_length}, columns=(name,),
            description=f"1 to {column.max_length} characters",
        ))
    return checks


def _between(column: Column, bounds: tuple[Bound, Bound], kind: str, severity: Severity, text: str) -> CheckSpec:
    lo, hi = (_gx_bound(b) for b in bounds)
    return CheckSpec(
        id=f"{column.name}.{kind}", kind=kind, severity=severity,
        expectation="ExpectColumnValuesToBeBetween",
        kwargs={"column": column.name, "min_value": lo, "max_value": hi}, columns=(column.name,),
        description=f"{text} [{bounds[0]}, {bounds[1]}]",
    )


def _gx_bound(bound: Bound) -> Bound | dt.datetime:
    # GX compares datetime64 columns against datetime.datetime bounds only
    if isinstance(bound, dt.date) and not isinstance(bound, dt.datetime):
        return dt.datetime(bound.year, bound.month, bound.day)
    return bound


def to_expectations(checks: list[CheckSpec]) -> list[Any]:
    """Great Expectations objects for the checks; each carries its check id and severity as meta."""
    import great_expectations.expectations as gxe

    out = []
    for check in checks:
        cls = getattr(gxe, check.expectation)
        note = "blocks computation" if check.severity == "block" else "warning only"
        out.append(cls(**check.kwargs, meta={"tillit_check": check.id, "severity": check.severity},
                       notes=f"{check.description} — {note}"))
    return out
