"""A small HTTP client for the coordinator, used by the CLI (and by nodes to enroll).

Error answers come back as the same :mod:`common.errors` classes the service raised, so the CLI
shows the service's one line and exits with the matching code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from common import errors

__all__ = ["CoordinatorClient"]

_BY_CODE: dict[str, type[errors.TillitError]] = {
    cls.code: cls for cls in (errors.UsageError, errors.ContractError, errors.ContractViolation,
                              errors.UnusableInputError, errors.BudgetExceeded, errors.Conflict, errors.NotFound,
                              errors.NotAuthenticated, errors.Forbidden, errors.ServiceUnavailable,
                              errors.ProcessFailed, errors.StudyFailed)
}
#: the coordinator's answer to a request it could not parse: the caller's input, exit 2
_BY_CODE["invalid_request"] = errors.UsageError


@dataclass
class CoordinatorClient:
    url: str
    token: str | None = None
    timeout: float = 120.0

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = httpx.request(method, self.url.rstrip("/") + path, headers=headers, timeout=self.timeout,
                                     **kwargs)
        except httpx.HTTPError as error:
            raise errors.ServiceUnavailable(f"cannot reach the coordinator at {self.url} ({type(error).__name__})") \
                from None
        if response.status_code >= 400:
            try:
                body = response.json()
                kind = _BY_CODE.get(str(body.get("error")), errors.TillitError)
                raise kind(str(body.get("detail", response.reason_phrase)))
            except (ValueError, AttributeError):
                raise errors.TillitError(f"coordinator answered {response.status_code} {response.reason_phrase}") \
                    from None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._call("POST", path, json=body)

    def put(self, path: str, body: dict[str, Any]) -> Any:
        return self._call("PUT", path, json=body)
