"""What every page route depends on: who is signed in (and may see this page), and a form checked for its
origin and CSRF token.

The page policies are the same table as the API's (:data:`coordinator.authz.POLICY`, checked by
:func:`coordinator.authz.authorize_identity`); a page that is not in it refuses everyone.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl, quote

from fastapi import Depends, Request

from coordinator.authz import CoordinatorDep, SessionDep, authorize_identity
from coordinator.web.sessions import COOKIE, Signed, look_up, same_origin, valid_csrf

__all__ = ["Form", "PageError", "PageUser", "SignInRequired", "Viewer", "is_page"]


class SignInRequired(Exception):
    """Not signed in (or the session ended): the browser goes to the sign-in page, then back to ``next``."""

    def __init__(self, next_path: str, ended: bool = False) -> None:
        super().__init__(next_path)
        self.next_path = next_path
        self.ended = ended


class PageError(Exception):
    """An error only pages have (a form without its CSRF token or from another site)."""

    def __init__(self, status: int, detail: str, title_key: str) -> None:
        super().__init__(detail)
        self.http_status = status
        self.detail = detail
        self.title_key = title_key


def is_page(request: Request) -> bool:
    """Whether an answer to this request is a page (HTML) rather than the API's JSON."""
    route = request.scope.get("route")
    if route is not None:
        return "pages" in (getattr(route, "tags", None) or [])
    path = request.url.path
    return not path.startswith(("/v1/", "/openapi.json", "/docs", "/redoc", "/healthz")) and \
        "text/html" in request.headers.get("accept", "")


def _viewer(request: Request, session: SessionDep, coordinator: CoordinatorDep) -> Signed | None:
    signed = look_up(session, request.cookies.get(COOKIE), coordinator.settings.web_idle_minutes)
    request.state.signed = signed
    return signed


#: whoever is signed in on this browser, or None (public pages)
Viewer = Annotated[Signed | None, Depends(_viewer)]


def _page_user(request: Request, session: SessionDep, signed: Viewer) -> Signed:
    if signed is None:
        where = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(quote(where, safe="/?=&-_.~"), ended=COOKIE in request.cookies)
    route = getattr(request.scope.get("route"), "name", "")
    authorize_identity(session, signed.identity, route, dict(request.path_params))
    return signed


#: the signed-in principal, allowed to see this page by the policy table
PageUser = Annotated[Signed, Depends(_page_user)]


async def _form(request: Request, signed: PageUser) -> dict[str, str]:
    if not same_origin(request):
        raise PageError(403, "the form was not sent from this site", "csrf_title")
    body = (await request.body()).decode("utf-8", errors="replace")
    form = dict(parse_qsl(body, keep_blank_values=True, max_num_fields=200))
    if not valid_csrf(signed.csrf, form.get("csrf")):
        raise PageError(403, "the form came without its security token", "csrf_title")
    return form


#: a POSTed form (URL-encoded) from this site, with the signed-in browser's CSRF token
Form = Annotated[dict[str, str], Depends(_form)]
