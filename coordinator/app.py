"""The coordinator's FastAPI application: routers, one error translation, the run watcher's lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from common.errors import TillitError
from coordinator.routes import admin, audit, budgets, nodes, public, studies
from coordinator.runner import Watcher, recover_interrupted_launches
from coordinator.state import Coordinator


__all__ = ["create_app"]


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

    @app.exception_handler(TillitError)
    async def _expected(request: Request, error: TillitError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if error.http_status == 401 else None
        return JSONResponse(error.to_json(), status_code=error.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ())) or "request"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return JSONResponse({"error": "invalid_request", "detail": f"{where}: {first.get('msg')}{more}"},
                            status_code=422)

    return app
