"""The typed validation report: counts and rates per check and a verdict — never a raw value.

A node operator reads it, the coordinator stores its counts as the dataset's validation status,
and a node compares its ``sha256`` to know whether an extract changed since it was checked.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from schemas.contract import Severity

Status = Literal["pass", "warn", "fail", "skipped"]
Verdict = Literal["pass", "warn", "fail"]
REPORT_FORMAT = 1


@dataclass(frozen=True)
class CheckResult:
    id: str
    kind: str
    column: str | None
    severity: Severity
    status: Status
    #: how many values (or rows) the check looked at, and how many did not meet it
    evaluated: int
    unexpected: int
    expectation: str
    description: str
    #: why a check was skipped or what kind of failure it is — names and counts only
    detail: str = ""

    @property
    def unexpected_rate(self) -> float:
        return self.unexpected / self.evaluated if self.evaluated else 0.0


@dataclass(frozen=True)
class ValidationReport:
    contract: str
    contract_version: str
    file_name: str
    file_format: str
    sha256: str
    size_bytes: int
    rows: int
    columns: int
    identifier: dict[str, int]
    pseudonymisation: dict[str, str]
    checks: tuple[CheckResult, ...]
    generated_at: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == "warn"]

    @property
    def verdict(self) -> Verdict:
        if self.failed:
            return "fail"
        return "warn" if self.warnings else "pass"

    def summary_line(self) -> str:
        """One line for the terminal: verdict, the contract and which checks failed or warned."""
        head = f"{self.file_name}: {self.verdict.upper()} against {self.contract} v{self.contract_version}"
        counts = f"{len(self.checks)} checks, {len(self.failed)} failed, {len(self.warnings)} warnings"
        names = [c.id for c in self.failed] or [c.id for c in self.warnings]
        listed = (": " + ", ".join(names[:6]) + (f" (+{len(names) - 6} more)" if len(names) > 6 else "")) if names else ""
        return f"{head} ({self.rows} rows; {counts}){listed}"

    def to_json(self) -> dict[str, object]:
        checks = []
        for c in self.checks:
            entry = asdict(c)
            entry["unexpected_rate"] = round(c.unexpected_rate, 8)
            checks.append(entry)
        return {
            "report_format": REPORT_FORMAT,
            "verdict": self.verdict,
            "contract": {"name": self.contract, "version": self.contract_version},
            "data": {"file_name": self.file_name, "format": self.file_format, "sha256": self.sha256,
                     "size_bytes": self.size_bytes, "rows": self.rows, "columns": self.columns},
            "identifier": self.identifier,
            "pseudonymisation": self.pseudonymisation,
            "summary": {"checks": len(self.checks), "failed": len(self.failed), "warnings": len(self.warnings),
                        "skipped": sum(c.status == "skipped" for c in self.checks)},
            "checks": checks,
            "generated_at": self.generated_at,
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1), encoding="utf-8")
