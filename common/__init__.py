"""The project's ground floor: the documented error tree and the refusal codes. Imports nothing of the project."""

from common.errors import (
    BudgetExceeded, Conflict, ContractError, ContractViolation, Forbidden, NotAuthenticated, NotFound, ProcessFailed,
    RefusalCode, ServiceUnavailable, StudyFailed, StudyRefused, TillitError, UnusableInputError, UsageError,
    describe_validation_error,
)

__all__ = [
    "BudgetExceeded",
    "Conflict",
    "ContractError",
    "ContractViolation",
    "Forbidden",
    "NotAuthenticated",
    "NotFound",
    "ProcessFailed",
    "RefusalCode",
    "ServiceUnavailable",
    "StudyFailed",
    "StudyRefused",
    "TillitError",
    "UnusableInputError",
    "UsageError",
    "describe_validation_error",
]
