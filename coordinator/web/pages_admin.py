"""An admin's pages: the principals (add one and see its token once, revoke one after a confirmation page) and
the municipalities' caps per resident over all their silos (read by staff, set by admins).

Each page calls the service the JSON API calls (:func:`coordinator.principals.create_principal`,
:func:`coordinator.principals.revoke_principal`, :func:`coordinator.ledger.set_municipality_cap`), so the same
rules, audit entries and refusals apply. A new token is shown once, on a page that no cache keeps.
"""

from __future__ import annotations

import json
import re
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from common.errors import NameTaken, UsageError
from coordinator.api_models import DATASET_ID, MAX_DATASETS, PERIOD, NewPrincipal
from coordinator.authz import CoordinatorDep, SessionDep
from coordinator.charts import epsilon_text
from coordinator.ledger import municipality_balance, municipality_balances, set_municipality_cap
from coordinator.models import Dataset, Principal
from coordinator.principals import ROLES, create_principal, revoke_principal
from coordinator.web.deps import Form, PageUser
from coordinator.web.render import Problem, period_and_epsilon, render
from coordinator.web.strings import text

__all__ = ["router"]

router = APIRouter(tags=["pages"], include_in_schema=False)
PrincipalName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{1,63}$")]
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")
_MUNICIPALITY = re.compile(r"^[a-z0-9_-]{1,48}$")
#: a new token's page: never stored by a browser or a proxy, never sent on as a referrer
_SECRET_PAGE = {"Cache-Control": "no-store", "Pragma": "no-cache", "Referrer-Policy": "no-referrer"}


def _principals(session: Session) -> list[dict[str, object]]:
    rows = session.execute(select(Principal).order_by(Principal.id)).scalars()
    return [{"name": p.name, "role": p.role, "datasets": json.loads(p.datasets), "created_at": p.created_at,
             "revoked_at": p.revoked_at} for p in rows]


def _known_datasets(session: Session) -> list[str]:
    return list(session.execute(select(Dataset.id).order_by(Dataset.id)).scalars())


def _principals_page(request: Request, session: Session, problems: list[Problem], values: dict[str, str],
                     status: int = 200, message: str = "") -> Response:
    return render(request, "principals.html", status=status, principals=_principals(session), roles=ROLES,
                  known=_known_datasets(session), problems=problems, values=values, message=message)


@router.get("/principals", name="web_principals")
def principals(request: Request, signed: PageUser, session: SessionDep,
               revoked: Annotated[str, Query(pattern=r"^$|^[a-z0-9][a-z0-9_.-]{1,63}$")] = "") -> Response:
    found = _principal(session, revoked) if revoked else None
    message = text("principal_revoked", name=revoked) if found is not None and found["revoked_at"] else ""
    return _principals_page(request, session, [], {}, message=message)


def _new_principal(form: dict[str, str]) -> tuple[NewPrincipal | None, list[Problem]]:
    """The form as the API's body, or what is wrong with its fields (the service checks the rest)."""
    name, role = form.get("name", "").strip(), form.get("role", "")
    datasets = sorted({d for d in re.split(r"[,\s]+", form.get("datasets", "")) if d})
    problems = []
    if not _NAME.fullmatch(name):
        problems.append(Problem("name", text("principal_name_invalid")))
    if role not in ROLES:
        problems.append(Problem("role-" + ROLES[0], text("principal_role_missing")))
    bad = [d for d in datasets if not re.fullmatch(DATASET_ID, d)]
    if bad:
        problems.append(Problem("datasets", text("principal_datasets_invalid", bad=", ".join(bad[:3]))))
    elif len(datasets) > MAX_DATASETS:
        problems.append(Problem("datasets", text("principal_too_many_datasets", most=MAX_DATASETS)))
    if problems:
        return None, problems
    return NewPrincipal(name=name, role=role, datasets=datasets), []


@router.post("/principals", name="web_create_principal")
def post_principal(request: Request, signed: PageUser, form: Form, session: SessionDep,
                   coordinator: CoordinatorDep) -> Response:
    values = {k: form.get(k, "") for k in ("name", "role", "datasets")}
    body, problems = _new_principal(form)
    if body is None:
        return _principals_page(request, session, problems, values, 422)
    try:
        with session.begin_nested():
            token = create_principal(coordinator.signer, session, signed.identity.name, body.name, body.role,
                                     tuple(body.datasets))
    except NameTaken as error:   # any other conflict (say, a broken audit chain) is the error page's
        return _principals_page(request, session, [Problem("name", error.message)], values, error.http_status)
    except UsageError as error:   # the role and the datasets do not go together
        return _principals_page(request, session, [Problem("datasets", error.message)], values, 422)
    unknown = [d for d in body.datasets if d not in _known_datasets(session)]
    return render(request, "principal_created.html", status=201, headers=_SECRET_PAGE, principal=body, token=token,
                  unknown=unknown)


def _principal(session: Session, name: str) -> dict[str, object] | None:
    return next((p for p in _principals(session) if p["name"] == name), None)


@router.get("/principals/{name}/revoke", name="web_revoke_principal_check")
def revoke_check(request: Request, name: PrincipalName, signed: PageUser, session: SessionDep) -> Response:
    found = _principal(session, name)
    if found is None:
        return render(request, "error.html", status=404, title_key="not_found_title", body_key="not_found_body",
                      detail=text("principal_unknown", name=name))
    last_admin = found["role"] == "admin" and not found["revoked_at"] and [
        p["name"] for p in _principals(session) if p["role"] == "admin" and not p["revoked_at"]] == [name]
    return render(request, "revoke.html", principal=found, yourself=name == signed.identity.name,
                  last_admin=last_admin)


@router.post("/principals/{name}/revoke", name="web_revoke_principal")
def post_revoke(request: Request, name: PrincipalName, signed: PageUser, form: Form, session: SessionDep,
                coordinator: CoordinatorDep) -> Response:
    revoke_principal(coordinator.signer, session, signed.identity.name, name)   # 404/409 become error pages
    return RedirectResponse(f"/principals?revoked={name}", status_code=303)


def _caps_page(request: Request, session: Session, problems: list[Problem], values: dict[str, str],
               status: int = 200, message: str = "") -> Response:
    caps = [{"municipality": m, **b.to_json()} for m, b in municipality_balances(session)]
    known = sorted({d.split("/", 1)[0] for d in _known_datasets(session)})
    return render(request, "caps.html", status=status, caps=caps, known=known, problems=problems, values=values,
                  message=message)


@router.get("/caps", name="web_caps")
def caps(request: Request, signed: PageUser, session: SessionDep,
         saved: Annotated[str, Query(pattern=r"^$|^[a-z0-9_-]{1,48}@" + PERIOD.strip("^$") + "$")] = "") -> Response:
    message = ""
    if saved:
        municipality, period = saved.split("@", 1)
        found = municipality_balance(session, municipality, period)
        if found is not None:
            message = text("cap_saved", eps=epsilon_text(found.to_json()["cap"]["epsilon"]),
                           municipality=municipality, period=period)
    return _caps_page(request, session, [], {}, message=message)


@router.post("/caps", name="web_set_cap")
def post_cap(request: Request, signed: PageUser, form: Form, session: SessionDep,
             coordinator: CoordinatorDep) -> Response:
    values = {k: form.get(k, "").strip() for k in ("municipality", "period", "epsilon")}
    setting, problems = period_and_epsilon(values["period"], values["epsilon"], text("cap_epsilon_invalid"))
    if not _MUNICIPALITY.fullmatch(values["municipality"]):
        problems.insert(0, Problem("municipality", text("municipality_invalid")))
    if setting is None or problems:
        return _caps_page(request, session, problems, values, 422)
    set_municipality_cap(coordinator, session, signed.identity.name, values["municipality"], values["period"],
                         setting.epsilon, None, setting.delta)
    return RedirectResponse(f"/caps?saved={values['municipality']}@{values['period']}", status_code=303)
