"""What every router shares: the error body and the statuses each route documents.

Every error answer has the :class:`ErrorBody` shape, whichever part of the service refuses the
request (``coordinator.app`` builds them all); its ``error`` is one of :mod:`common.errors`' codes, or
``invalid_request`` (400, 422), ``not_found`` (an unknown route), ``method_not_allowed`` (405),
``request_too_large`` (413) or ``internal_error`` (500, a bug; the log has the traceback).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["ERRORS", "HTML_ERRORS", "ErrorBody"]


class ErrorBody(BaseModel):
    """Every error answer: a stable code and one readable line (never a value from anyone's data)."""

    error: str
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in (
        (400, "bad request or setting"), (401, "no token, or an unknown token"),
        (403, "the role or scope does not allow it"), (404, "no such resource"),
        (409, "conflicts with the current state or a budget"),
        (413, "the request body is larger than the coordinator reads (1 MiB)"),
        (422, "the request body or parameters are invalid"), (503, "the SuperLink cannot be reached"))
}

#: the same statuses for a route whose success is a page: its errors are still JSON bodies
HTML_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": answer["description"],
             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
    for status, answer in ERRORS.items()
}
