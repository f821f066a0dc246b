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
    ├── StudyFailed                   exit 3  HTTP 409  a study ran and did not complete (refusal, timeout, node lost)
    ├── BudgetExceeded                exit 3  HTTP 409  a charge would overspend a dataset's or municipality's budget
    ├── Conflict                      exit 3  HTTP 409  the request does not fit the current state (e.g. study status)
    │   └── NameTaken                 exit 3  HTTP 409  a principal of that name exists (names are never reused)
    ├── NotFound                      exit 4  HTTP 404  no such study, dataset, principal or result
    ├── NotAuthenticated              exit 5  HTTP 401  no token, or a token the coordinator does not know
    ├── Forbidden                     exit 5  HTTP 403  the principal's role or scope does not allow it
    ├── ServiceUnavailable            exit 6  HTTP 503  the coordinator or the SuperLink cannot be reached
    └── ProcessFailed                 exit 6  HTTP 503  a Flower process or command did not start, answer or finish

A node's refusal travels to the server as a Flower error reply whose code is the refusal's
:class:`RefusalCode`; the server turns it back into a refusal in the study's result.

This module is the project's ground floor: it imports nothing of the project, and every layer may
import it.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = [
    "BudgetExceeded",
    "Conflict",
    "ContractError",
    "ContractViolation",
    "Forbidden",
    "NameTaken",
    "NotAuthenticated",
    "NotFound",
    "ServiceUnavailable",
    "StudyFailed",
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


class RefusalCode(IntEnum):
    """Flower error-reply codes a node answers a study with; each has one meaning (:attr:`meaning`)."""

    CONTRACT_BROKEN = 4101
    BUDGET_EXCEEDED = 4201
    ALREADY_RELEASED = 4202
    NOT_PARTICIPATING = 4301
    MALFORMED_SPEC = 4302
    NOT_SIGNED = 4303
    ANCHOR_BACKWARDS = 4304
    NODE_FAILED = 4500

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]

    @classmethod
    def describe(cls, code: int) -> str:
        """The meaning of a code received in a reply (``unknown`` for a code that is not ours)."""
        try:
            return cls(code).meaning
        except ValueError:
            return "unknown"


_MEANINGS = {
    RefusalCode.CONTRACT_BROKEN: "the node's extract breaks its contract",
    RefusalCode.BUDGET_EXCEEDED: "the study would exceed the node's local privacy budget",
    RefusalCode.ALREADY_RELEASED: "the node has already released everything this study may ask for",
    RefusalCode.NOT_PARTICIPATING: "the study does not name this node's dataset or contract",
    RefusalCode.MALFORMED_SPEC: "the study spec is malformed or inconsistent",
    RefusalCode.NOT_SIGNED: "the study spec is not signed by the coordinator, or was altered",
    RefusalCode.ANCHOR_BACKWARDS: "the study spec's audit anchor goes backwards: the coordinator's audit log was "
                                  "rewritten or cut after this node saw it",
    RefusalCode.NODE_FAILED: "the node failed while computing (no data was released)",
}


class StudyRefused(TillitError):
    """A node refused a study; ``reason_code`` says why (there is no default: every refusal names its code)."""

    exit_code = 3
    http_status = 409
    code = "study_refused"

    def __init__(self, message: str, reason_code: RefusalCode) -> None:
        super().__init__(message)
        self.reason_code = RefusalCode(reason_code)


class StudyFailed(TillitError):
    """A study ran and did not complete: a node refused or was lost, or the run passed its deadline."""

    exit_code = 3
    http_status = 409
    code = "study_failed"


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


class NameTaken(Conflict):
    """A principal of that name exists, active or revoked: names are never reused."""

    code = "name_taken"


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


class ProcessFailed(TillitError):
    """A Flower process or command (SuperLink, SuperNode, ``flwr``) did not start, answer or finish."""

    exit_code = 6
    http_status = 503
    code = "process_failed"


def describe_validation_error(error: ValidationError) -> str:
    """The first problem of a parsed document as ``where: what`` (and how many more), on one line."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"
