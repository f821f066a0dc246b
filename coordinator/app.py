"""The coordinator's FastAPI application: routers, one error translation, the run watcher's lifetime.

Every error answer, whoever raises it — our services (:class:`TillitError`), request validation,
Starlette's router (an unknown route, a method a route does not take), the body limit, an unexpected
exception — is ``{"error": code, "detail": one line}`` and is built here, nowhere else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.errors import TillitError
from coordinator import web
from coordinator.routes import admin, audit, budgets, nodes, public, studies
from coordinator.runner import Watcher, recover_interrupted_launches
from coordinator.state import Coordinator


__all__ = ["MAX_BODY_BYTES", "create_app"]

#: the largest request body the coordinator reads (a study draft is a few KiB); larger ones are answered 413
MAX_BODY_BYTES = 1024 * 1024

#: codes (and, in place of Starlette's bare reason phrases, details) of the errors the framework raises itself
_FRAMEWORK_ERRORS = {
    400: ("invalid_request", "the request body cannot be read"),
    404: ("not_found", "no such endpoint (the API is described at /docs)"),
    405: ("method_not_allowed", "this endpoint does not take that method"),
    413: ("request_too_large", f"the request body is larger than {MAX_BODY_BYTES // 1024 // 1024} MiB"),
}


def _one_line(text: str, limit: int = 2000) -> str:
    return " ".join(text.split())[:limit]


def _error(status: int, code: str, detail: str, headers: Mapping[str, str] | None = None,
           body: Mapping[str, object] | None = None, request: Request | None = None) -> Response:
    if request is not None and web.is_page(request):
        return web.error_page(request, status, _one_line(detail))
    return JSONResponse({**(body or {}), "error": code, "detail": _one_line(detail)}, status_code=status,
                        headers=headers)


#: paths whose pages come from FastAPI itself (Swagger UI, ReDoc load their scripts from a CDN): no page CSP there
_OWN_DOCS = ("/docs", "/redoc")


class _SecurityHeaders:
    """Every answer says: no sniffing, no framing, no referrer to other sites; and, unless the route set its own
    (a report), the pages' Content-Security-Policy (harmless on JSON)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(_OWN_DOCS):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                for name, value in ((b"content-security-policy", web.PAGE_CSP.encode()),
                                    (b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                                    (b"referrer-policy", b"same-origin")):
                    if name not in names:
                        headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class _BodyLimit:
    """Answer 413 to a request body larger than ``limit``: by its Content-Length before anything reads it,
    or, for a body without one, as soon as the bytes received pass the limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await _error(413, *_FRAMEWORK_ERRORS[413])(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(413)  # FastAPI passes an HTTPException from reading the body through
            return message

        await self.app(scope, limited, send)


def create_app(coordinator: Coordinator, watch: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        watcher = Watcher(coordinator) if watch else None
        recover_interrupted_launches(coordinator)
        if watcher is not None:
            watcher.start()
        yield
        if watcher is not None:
            watcher.stop()

    app = FastAPI(title="Tillit coordinator", version="1", lifespan=lifespan,
                  description="Studies, privacy budgets, approvals, the audit log and the public register.")
    app.state.coordinator = coordinator
    for module in (public, admin, nodes, budgets, studies, audit):
        app.include_router(module.router)
    web.install(app)

    @app.exception_handler(TillitError)
    async def _expected(request: Request, error: TillitError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if error.http_status == 401 else None
        return _error(error.http_status, error.code, error.message, headers, body=error.to_json(), request=request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Response:
        problems = error.errors()
        first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ())) or "request"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return _error(422, "invalid_request", f"{where}: {first.get('msg')}{more}", request=request)

    @app.exception_handler(HTTPException)
    async def _framework(request: Request, error: HTTPException) -> Response:
        code, detail = _FRAMEWORK_ERRORS.get(error.status_code, ("http_error", ""))
        said = str(error.detail)
        if said and said != HTTPStatus(error.status_code).phrase and error.status_code != 400:
            detail = said  # a detail someone wrote, not the bare reason phrase
        return _error(error.status_code, code, detail or HTTPStatus(error.status_code).phrase, error.headers,
                      request=request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> Response:
        # a bug: the answer says nothing about it; the server's log has the traceback
        return _error(500, "internal_error", "the coordinator failed unexpectedly; its log has the details",
                      request=request)

    app.add_middleware(_BodyLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(_SecurityHeaders)
    return app
