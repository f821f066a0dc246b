"""The coordinator's web pages: server-rendered (Jinja2), usable without JavaScript, for admins, privacy
officers, analysts, node operators and the public.

Pages call the same services as the JSON API and are checked against the same policy table
(:mod:`coordinator.authz`); they sign in through a session cookie (:mod:`coordinator.web.sessions`), which the
API never reads. Scripts (htmx, for the live cost preview and a run's progress) and styles are served from
``/static`` (``static/vendor`` holds htmx as published on npm); every page has a strict Content-Security-Policy.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from coordinator.web import pages_admin, pages_analyst, pages_auth, pages_officer, pages_public
from coordinator.web.deps import PageError, SignInRequired, is_page
from coordinator.web.render import PAGE_CSP, REPORT_CSP, error_page

__all__ = ["PAGE_CSP", "REPORT_CSP", "error_page", "install", "is_page"]

STATIC = Path(__file__).resolve().parent / "static"


def install(app: FastAPI) -> None:
    """Add the pages, their static files and the answers only pages give (sign-in redirect, CSRF refusal)."""
    for module in (pages_auth, pages_admin, pages_officer, pages_analyst, pages_public):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, error: SignInRequired) -> Response:
        notice = "&notice=ended" if error.ended else ""
        return RedirectResponse(f"/sign-in?next={error.next_path}{notice}", status_code=303)

    @app.exception_handler(PageError)
    async def _page_error(request: Request, error: PageError) -> Response:
        return error_page(request, error.http_status, error.detail, error.title_key)
