"""A small HTTP client for the coordinator, used by the CLI (and by nodes to enroll).

Error answers come back as the same :mod:`common.errors` classes the service raised, so the CLI
shows the service's one line and exits with the matching code. Every request path is built by
:func:`route`, which percent-encodes each name put into it: a period ``2031?x=1`` stays one period
(and is refused as one), it never becomes the period ``2031`` and a query.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from common import errors

__all__ = ["CoordinatorClient", "check_token", "read_token_file", "route"]

#: a token is ``tlt_`` and 43 URL-safe characters; a token file is never more than this
_MAX_TOKEN_BYTES = 4096

_BY_CODE: dict[str, type[errors.TillitError]] = {
    cls.code: cls for cls in (errors.UsageError, errors.ContractError, errors.ContractViolation,
                              errors.UnusableInputError, errors.BudgetExceeded, errors.Conflict, errors.NotFound,
                              errors.NotAuthenticated, errors.Forbidden, errors.ServiceUnavailable,
                              errors.ProcessFailed, errors.StudyFailed)
}
#: the coordinator's answers to a request it could not parse or would not read: the caller's input, exit 2
_BY_CODE["invalid_request"] = errors.UsageError
_BY_CODE["request_too_large"] = errors.UsageError
#: an answer without one of our codes (a proxy's, or a foreign server's) still gets the exit code of its status
_BY_STATUS: dict[int, type[errors.TillitError]] = {
    400: errors.UsageError, 401: errors.NotAuthenticated, 403: errors.Forbidden, 404: errors.NotFound,
    409: errors.Conflict, 413: errors.UsageError, 422: errors.UsageError, 502: errors.ServiceUnavailable,
    503: errors.ServiceUnavailable, 504: errors.ServiceUnavailable,
}


def route(template: str, *segments: str) -> str:
    """``template`` with each ``{}`` replaced by one segment, percent-encoded (``/``, ``?``, ``#`` included)."""
    if any(segment in ("", ".", "..") for segment in segments):
        raise errors.UsageError("a name in a request path cannot be empty, '.' or '..'")
    try:
        return template.format(*(quote(segment, safe="") for segment in segments))
    except UnicodeEncodeError:
        raise errors.UsageError("a name in a request path is not valid UTF-8 text") from None


def read_token_file(path: Path) -> str:
    """The token in ``path``: UTF-8 text, surrounding whitespace ignored; one clear line when it is not one."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_TOKEN_BYTES + 1)
    except OSError as error:
        reason = (error.strerror or type(error).__name__).lower()
        raise errors.UsageError(f"cannot read the token file {path}: {reason}") from None
    if len(raw) > _MAX_TOKEN_BYTES:
        raise errors.UsageError(f"the token file {path} is larger than a token ({_MAX_TOKEN_BYTES:,} bytes at most)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.UsageError(f"the token file {path} is not UTF-8 text") from None
    return check_token(text.strip(), f"the token file {path}")


def check_token(token: str, source: str) -> str:
    """A bearer token is printable ASCII without spaces (RFC 6750); anything else cannot be one of ours."""
    if not token:
        raise errors.UsageError(f"{source} is empty")
    if len(token) > _MAX_TOKEN_BYTES or any(not "!" <= character <= "~" for character in token):
        raise errors.UsageError(f"{source} does not hold a token (a token is one word of printable ASCII)")
    return token


@dataclass
class CoordinatorClient:
    url: str
    token: str | None = None
    timeout: float = 120.0

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if body is not None:
            try:
                kwargs["content"] = json.dumps(body, allow_nan=False).encode("utf-8")
            except (ValueError, UnicodeEncodeError):
                raise errors.UsageError("the request holds a value JSON cannot carry (NaN, infinity or a character "
                                        "that is not UTF-8)") from None
            headers["Content-Type"] = "application/json"
        try:
            response = httpx.request(method, self.url.rstrip("/") + path, headers=headers, timeout=self.timeout,
                                     **kwargs)
        except httpx.InvalidURL:
            raise errors.UsageError(f"{self.url} is not a URL the coordinator can be reached at") from None
        except httpx.HTTPError as error:
            raise errors.ServiceUnavailable(f"cannot reach the coordinator at {self.url} ({type(error).__name__})") \
                from None
        if response.status_code >= 400:
            kind = _BY_STATUS.get(response.status_code, errors.TillitError)
            try:
                answer = response.json()
                kind = _BY_CODE.get(str(answer.get("error")), kind)
                detail = str(answer.get("detail", response.reason_phrase))
            except (ValueError, AttributeError):
                detail = f"coordinator answered {response.status_code} {response.reason_phrase}"
            raise kind(" ".join(detail.split())[:1000] or response.reason_phrase)
        kind_of_body = response.headers.get("content-type", "")
        if kind_of_body.startswith("application/json"):
            try:
                return response.json()
            except ValueError:
                pass
        elif kind_of_body.startswith("text/plain"):
            return response.text   # the one plain answer: the signing key
        raise errors.ServiceUnavailable(f"{self.url} did not answer like a Tillit coordinator")

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._call("POST", path, body)

    def put(self, path: str, body: dict[str, Any]) -> Any:
        return self._call("PUT", path, body)
