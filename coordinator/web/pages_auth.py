"""Signing in and out, and the home page.

Sign-in takes a principal's token once, through a form bound to this browser (a one-time cookie) and to this
site (Origin); the token is checked and forgotten, a session is recorded and its id set in an HttpOnly cookie.
Signing in and out are audit entries.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from coordinator import audit
from coordinator.authz import CoordinatorDep, SessionDep
from coordinator.models import Approval, Principal, Study
from coordinator.principals import hash_token
from coordinator.web.deps import Form, PageError, PageUser, Viewer
from coordinator.web.render import Problem, render
from coordinator.web.sessions import (COOKIE, SIGN_IN_COOKIE, clear_cookie, end_session, new_nonce, same_origin,
                                      set_cookie, start_session, valid_csrf)
from coordinator.web.strings import text
from federation.spec import StudySpec

__all__ = ["router"]

router = APIRouter(tags=["pages"], include_in_schema=False)
_NOTICES = {"out": "signed_out", "ended": "session_ended"}


def _local(path: str) -> str:
    """Where to go after signing in: a path on this site only (never another host)."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"


def _sign_in_page(request: Request, next_path: str, problems: list[Problem], status: int = 200,
                  notice: str | None = None) -> Response:
    nonce = new_nonce()
    response = render(request, "sign_in.html", status=status, nonce=nonce, next=_local(next_path), problems=problems,
                      notice=notice)
    set_cookie(response, SIGN_IN_COOKIE, nonce, max_age=1800)
    return response


@router.get("/sign-in", name="web_sign_in_form")
def sign_in_form(request: Request, viewer: Viewer, next: Annotated[str, Query(max_length=500)] = "/",
                 notice: Annotated[str, Query(max_length=20)] = "") -> Response:
    if viewer is not None:
        return RedirectResponse(_local(next), status_code=303)
    return _sign_in_page(request, next, [], notice=_NOTICES.get(notice))


@router.post("/sign-in", name="web_sign_in")
async def sign_in(request: Request, session: SessionDep, coordinator: CoordinatorDep) -> Response:
    form = dict(parse_qsl((await request.body()).decode("utf-8", errors="replace"), keep_blank_values=True,
                          max_num_fields=20))
    if not same_origin(request) or not valid_csrf(request.cookies.get(SIGN_IN_COOKIE, ""), form.get("nonce")):
        raise PageError(403, "the sign-in form was not sent from this site, or it expired", "csrf_title")
    token, next_path = form.get("token", "").strip(), form.get("next", "/")
    if not token:
        return _sign_in_page(request, next_path, [Problem("token", text("token_missing"))], 422)
    principal = session.execute(select(Principal).where(Principal.token_hash == hash_token(token))).scalar_one_or_none()
    if principal is None or principal.revoked_at is not None:
        return _sign_in_page(request, next_path, [Problem("token", text("token_unknown"))], 401)
    session_id = start_session(session, principal)
    audit.append(session, coordinator.signer, principal.name, "web.signed_in", principal.name,
                 {"role": principal.role})
    response = RedirectResponse(_local(next_path), status_code=303)
    set_cookie(response, COOKIE, session_id)
    clear_cookie(response, SIGN_IN_COOKIE)
    return response


@router.post("/sign-out", name="web_sign_out")
def sign_out(signed: PageUser, form: Form, session: SessionDep, coordinator: CoordinatorDep) -> Response:
    end_session(session, signed.session_id)
    audit.append(session, coordinator.signer, signed.identity.name, "web.signed_out", signed.identity.name, {})
    response = RedirectResponse("/sign-in?notice=out", status_code=303)
    clear_cookie(response, COOKIE)
    return response


@router.get("/", name="web_home")
def home(request: Request, signed: PageUser, session: SessionDep) -> Response:
    waiting = 0
    if signed.identity.role == "privacy_officer":
        waiting = len(waiting_studies(session, signed.identity.datasets))
    return render(request, "home.html", waiting=waiting)


def waiting_studies(session: Session, datasets: frozenset[str]) -> list[tuple[Study, list[str]]]:
    """Pending studies that touch one of ``datasets`` on which no decision was taken yet, with those datasets."""
    found = []
    for study in session.execute(select(Study).where(Study.status == "pending").order_by(Study.created_at)).scalars():
        decided = {a.dataset for a in session.execute(select(Approval).where(Approval.study_id == study.id)).scalars()}
        mine = sorted((set(StudySpec.model_validate_json(study.spec).datasets) & datasets) - decided)
        if mine:
            found.append((study, mine))
    return found
