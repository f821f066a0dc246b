"""Contract validation on the node — the only package that imports great_expectations."""

from validation._conformance import Conformance, conform
from validation._report import CheckResult, ValidationReport
from validation._run import Source, Timings, validate_frame
from validation._suite import CheckSpec, contract_checks

__all__ = [
    "CheckResult",
    "CheckSpec",
    "Conformance",
    "Source",
    "Timings",
    "ValidationReport",
    "conform",
    "contract_checks",
    "validate_frame",
]
