"""Running a contract's suite with Great Expectations and turning the results into a report.

Tuning that matters (measured in ``benchmarks/validation_vs_pandera.py``):
- ``BASIC`` results with ``partial_unexpected_count: 0``: counts only, no unexpected values and
  no index lists — both faster and the privacy requirement;
- the dtypes produced by :mod:`validation._conformance` (vectorised comparisons);
- one ephemeral context per run, progress bars off.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pandas as pd

from schemas.contract import Contract
from schemas.identity import IdentityCheck
from validation._conformance import Conformance, conform
from validation._docs import add_verdict_banner, sanitize_data_docs
from validation._report import CheckResult, Status, ValidationReport
from validation._suite import ROWS_PER_RESIDENT, CheckSpec, contract_checks, to_expectations

RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0, "include_unexpected_rows": False}
_DOCS_SITE = "node"


@dataclass(frozen=True)
class Source:
    """What is known about the file apart from its content."""

    file_name: str
    file_format: str
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class Timings:
    conformance: float
    great_expectations: float
    data_docs: float


def validate_frame(
    frame: pd.DataFrame,
    contract: Contract,
    identity: IdentityCheck | None,
    source: Source,
    pseudonymisation: dict[str, str],
    docs_dir: Path | None = None,
) -> tuple[ValidationReport, Timings]:
    """Check an already pseudonymised frame against its contract."""
    t0 = time.perf_counter()
    shape = conform(frame, contract)
    results: list[CheckResult] = [_columns_check(shape, contract), *_type_checks(shape, contract)]
    if identity is not None:
        results.append(_identity_check(identity, contract, len(frame)))
    runnable, skipped = _plan(contract_checks(contract), shape)
    gx_frame = shape.frame
    if any(c.kind == "rows_per_resident" for c in runnable):
        ident = gx_frame[contract.identifier]
        counts = ident.groupby(ident, sort=False).transform("size")
        gx_frame = gx_frame.assign(**{ROWS_PER_RESIDENT: counts.astype("float64")})
    t1 = time.perf_counter()
    gx_results, docs_seconds = _run_gx(gx_frame, contract, runnable, docs_dir)
    t2 = time.perf_counter()
    by_id = {c.id: c for c in runnable}
    results += [_to_check_result(by_id[check_id], raw) for check_id, raw in gx_results]
    results += skipped
    report = ValidationReport(
        contract=contract.name, contract_version=contract.version,
        file_name=source.file_name, file_format=source.file_format, sha256=source.sha256,
        size_bytes=source.size_bytes, rows=len(frame), columns=len(frame.columns),
        identifier=_identity_counts(identity), pseudonymisation=pseudonymisation,
        checks=tuple(results),
    )
    if docs_dir is not None:
        add_verdict_banner(docs_dir, report.verdict, [c.id for c in report.failed], [c.id for c in report.warnings])
    return report, Timings(t1 - t0, t2 - t1 - docs_seconds, docs_seconds)


def _plan(checks: list[CheckSpec], shape: Conformance) -> tuple[list[CheckSpec], list[CheckResult]]:
    """Checks that can run, and the skipped ones with the reason (a missing or mistyped column)."""
    runnable, skipped = [], []
    for check in checks:
        missing = [c for c in check.columns if c in shape.missing_columns]
        mistyped = [c for c in check.columns if c in shape.type_violations]
        if missing or mistyped:
            why = (f"column missing: {', '.join(missing)}" if missing
                   else f"column has values of the wrong type: {', '.join(mistyped)}")
            skipped.append(CheckResult(
                id=check.id, kind=check.kind, column=check.column, severity=check.severity, status="skipped",
                evaluated=0, unexpected=0, expectation=check.expectation, description=check.description, detail=why,
            ))
        else:
            runnable.append(check)
    return runnable, skipped


def _run_gx(frame: pd.DataFrame, contract: Contract, checks: list[CheckSpec],
            docs_dir: Path | None) -> tuple[list[tuple[str, dict[str, Any]]], float]:
    import great_expectations as gx
    from great_expectations.checkpoint.actions import UpdateDataDocsAction
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (context.data_sources.add_pandas("node")
             .add_dataframe_asset(contract.name)
             .add_batch_definition_whole_dataframe("extract"))
    suite = context.suites.add(gx.ExpectationSuite(name=contract.label, expectations=to_expectations(checks)))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{contract.name} extract", data=batch, suite=suite))
    docs_seconds = 0.0
    if docs_dir is None:
        outcome = definition.run(batch_parameters={"dataframe": frame}, result_format=RESULT_FORMAT)
        results = outcome.results
    else:
        for site in list(context.get_site_names()):
            context.delete_data_docs_site(site)
        context.add_data_docs_site(site_name=_DOCS_SITE, site_config={
            "class_name": "SiteBuilder",
            # GX's file store takes absolute paths only
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir.resolve())},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
        checkpoint = context.checkpoints.add(gx.Checkpoint(
            name=f"{contract.name} check", validation_definitions=[definition], result_format=RESULT_FORMAT,
            actions=[UpdateDataDocsAction(name="data docs", site_names=[_DOCS_SITE])],
        ))
        run = checkpoint.run(batch_parameters={"dataframe": frame})
        results = next(iter(run.run_results.values())).results
        t = time.perf_counter()
        sanitize_data_docs(docs_dir)
        docs_seconds = time.perf_counter() - t
    _remove_default_docs_dir(context)
    out = []
    for result in results:
        described = cast(dict[str, Any], result.to_json_dict())
        out.append((str(described["expectation_config"]["meta"]["tillit_check"]), described))
    return out, docs_seconds


def _remove_default_docs_dir(context: Any) -> None:
    """GX's ephemeral context makes an empty temp directory for a default docs site; leave none behind."""
    import tempfile

    for site in context.get_docs_sites_urls():
        url = str(site.get("site_url") or "")
        if site.get("site_name") == _DOCS_SITE or not url.startswith("file://"):
            continue
        directory = Path(url[len("file://"):]).parent
        if directory.parent == Path(tempfile.gettempdir()) and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()


def _to_check_result(check: CheckSpec, raw: dict[str, Any]) -> CheckResult:
    result = raw.get("result") or {}
    failed_to_run = bool((raw.get("exception_info") or {}).get("raised_exception"))
    if check.kind == "row_count":
        rows = int(result.get("observed_value") or 0)
        evaluated, unexpected = rows, 0 if raw["success"] else 1
    else:
        elements = int(result.get("element_count") or 0)
        missing = int(result.get("missing_count") or 0)
        unexpected = int(result.get("unexpected_count") or 0)
        evaluated = elements if check.kind in ("not_null", "null_rate") else elements - missing
    status: Status
    if failed_to_run:
        # The exception text may quote data; only the fact of the failure is reported.
        status, detail = "fail", "could not be evaluated on this extract"
    elif raw["success"]:
        status, detail = "pass", ""
    else:
        status, detail = ("fail" if check.severity == "block" else "warn"), ""
    return CheckResult(
        id=check.id, kind=check.kind, column=check.column, severity=check.severity, status=status,
        evaluated=evaluated, unexpected=unexpected, expectation=check.expectation,
        description=check.description, detail=detail,
    )


def _columns_check(shape: Conformance, contract: Contract) -> CheckResult:
    missing, extra = shape.missing_columns, shape.extra_columns
    parts = []
    if missing:
        parts.append(f"missing: {', '.join(missing)}")
    if extra:
        parts.append(f"not in the contract: {', '.join(extra)}")
    if missing or (extra and contract.extra_columns == "block"):
        status = "fail"
    elif extra:
        status = "warn"
    else:
        status = "pass"
    return CheckResult(
        id="table.columns", kind="columns", column=None,
        severity="block", status=status,  # type: ignore[arg-type]
        evaluated=len(contract.column_names) + len(extra), unexpected=len(missing) + len(extra),
        expectation="tillit:columns", description="the extract has exactly the contract's columns",
        detail="; ".join(parts),
    )


def _type_checks(shape: Conformance, contract: Contract) -> list[CheckResult]:
    out = []
    for name in contract.column_names:
        if name in shape.missing_columns:
            continue
        bad = shape.type_violations.get(name, 0)
        column = contract.column(name)
        values = int(shape.frame[name].notna().sum()) + bad
        out.append(CheckResult(
            id=f"{name}.type", kind="type", column=name, severity="block", status="fail" if bad else "pass",
            evaluated=values, unexpected=bad, expectation="tillit:type",
            description=f"values are of type {column.type}",
            detail=f"stored as {shape.stored_as[name]}" if bad else "",
        ))
    return out


def _identity_check(identity: IdentityCheck, contract: Contract, rows: int) -> CheckResult:
    rule = contract.identity_rule
    bad = identity.missing + identity.invalid
    parts = [f"{identity.missing} missing", f"{identity.invalid_format} malformed"]
    if rule.format != "opaque":  # an upstream pseudonym carries no birth date and no check digit
        parts += [f"{identity.invalid_date} with an impossible birth date",
                  f"{identity.invalid_check_character} with a wrong check character"]
    return CheckResult(
        id=f"{contract.identifier}.identity_code", kind="identity_code", column=contract.identifier,
        severity="block", status="fail" if bad else "pass", evaluated=rows, unexpected=bad,
        expectation="tillit:identity_code", description=f"valid {rule.label}",
        detail=", ".join(parts) if bad else "",
    )


def _identity_counts(identity: IdentityCheck | None) -> dict[str, int]:
    if identity is None:
        return {}
    return {"missing": identity.missing, "invalid_format": identity.invalid_format,
            "invalid_date": identity.invalid_date, "invalid_check_character": identity.invalid_check_character}
