"""The documented tree of Tillit's expected failures.

Every failure a user can cause (bad input, a broken contract, a refused study) is one of these. Each
carries the exit code the CLI returns and the HTTP status the coordinator answers with; both are
translated in exactly one place (``tillit.cli.main`` and the coordinator's exception handler), so
an expected failure is always one readable line and never a traceback.

Messages must never contain a raw data value, an identifier or a row index: they are shown to
operators, logged and sent over the network. Say *what* is wrong and *how many*, not *which value*.

    TillitError                       exit 1  HTTP 500
    ├── UsageError                    exit 2  HTTP 400  bad option, setting or missing secret
    ├── ContractError                 exit 2  HTTP 422  unknown contract or a malformed contract file
    ├── UnusableInputError            exit 2  HTTP 422  the extract cannot be read at all
    ├── ContractViolation             exit 1  HTTP 422  the extract was read and breaks its contract
    ├── StudyRefused                  exit 3  HTTP 409  a node refused a study (budget, contract, spec)
    ├── BudgetExceeded                exit 3  HTTP 409  a charge would overspend a dataset's or municipality's budget
    ├── Conflict                      exit 3  HTTP 409  the request does not fit the current state (e.g. study status)
    ├── NotFound                      exit 4  HTTP 404  no such study, dataset, principal or result
    ├── NotAuthenticated              exit 5  HTTP 401  no token, or a token the coordinator does not know
    ├── Forbidden                     exit 5  HTTP 403  the principal's role or scope does not allow it
    └── ServiceUnavailable            exit 6  HTTP 503  the coordinator or the SuperLink cannot be reached

A node's refusal travels to the server as a Flower error reply whose code is the refusal's
``reason_code`` (see :data:`REFUSAL_CODES`); the server turns it back into ``StudyRefused``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = [
    "REFUSAL_CODES",
    "BudgetExceeded",
    "Conflict",
    "ContractError",
    "ContractViolation",
    "Forbidden",
    "NotAuthenticated",
    "NotFound",
    "ServiceUnavailable",
    "StudyRefused",
    "TillitError",
    "UnusableInputError",
    "UsageError",
    "describe_validation_error",
]


class TillitError(Exception):
    """Base of every expected failure; ``str(error)`` is the one line shown to the user."""

    exit_code: int = 1
    http_status: int = 500
    code: str = "tillit_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_json(self) -> dict[str, str]:
        """The body the coordinator returns and a node reports: a stable code and the message."""
        return {"error": self.code, "detail": self.message}


class UsageError(TillitError):
    """An option, setting or secret is missing or malformed."""

    exit_code = 2
    http_status = 400
    code = "usage_error"


class ContractError(TillitError):
    """A contract is unknown, or a contract file does not follow the contract format."""

    exit_code = 2
    http_status = 422
    code = "contract_error"


class UnusableInputError(TillitError):
    """The extract cannot be read: missing, empty, not Parquet/CSV, truncated, wrong encoding."""

    exit_code = 2
    http_status = 422
    code = "unusable_input"


class ContractViolation(TillitError):
    """The extract was read but breaks blocking checks of its contract."""

    exit_code = 1
    http_status = 422
    code = "contract_violation"


#: Flower error-reply codes a node uses to refuse a study, and what each means
REFUSAL_CODES = {
    4101: "the node's extract breaks its contract",
    4201: "the study would exceed the node's local privacy budget",
    4202: "the node has already released everything this study may ask for",
    4301: "the study does not name this node's dataset or contract",
    4302: "the study spec is malformed or inconsistent",
    4303: "the study spec is not signed by the coordinator, or was altered",
    4500: "the node failed while computing (no data was released)",
}


class StudyRefused(TillitError):
    """A node refused a study; ``reason_code`` is one of :data:`REFUSAL_CODES`."""

    exit_code = 3
    http_status = 409
    code = "study_refused"

    def __init__(self, message: str, reason_code: int = 4302) -> None:
        super().__init__(message)
        self.reason_code = reason_code


class BudgetExceeded(TillitError):
    """A charge would exceed a privacy budget; the message names the dataset (or municipality) and amounts."""

    exit_code = 3
    http_status = 409
    code = "budget_exceeded"


class Conflict(TillitError):
    """The request is valid but does not fit the current state (a study already approved, a name taken)."""

    exit_code = 3
    http_status = 409
    code = "conflict"


class NotFound(TillitError):
    exit_code = 4
    http_status = 404
    code = "not_found"


class NotAuthenticated(TillitError):
    exit_code = 5
    http_status = 401
    code = "not_authenticated"


class Forbidden(TillitError):
    exit_code = 5
    http_status = 403
    code = "forbidden"


class ServiceUnavailable(TillitError):
    exit_code = 6
    http_status = 503
    code = "service_unavailable"


def describe_validation_error(error: ValidationError) -> str:
    """The first problem of a parsed document as ``where: what`` (and how many more), on one line."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"
