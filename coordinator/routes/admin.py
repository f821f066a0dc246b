"""Principals (admin only: add, list, revoke), who-am-I, and municipality-wide caps (set by admins, read by staff)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy import select

from coordinator.api_models import (PERIOD, BalanceOut, CapSetting, MunicipalityBalanceOut, NewPrincipal,
                                   NewPrincipalOut, PrincipalOut, RevokedPrincipalOut, WhoAmIOut)
from coordinator.authz import CoordinatorDep, CurrentPrincipal, SessionDep
from coordinator.ledger import municipality_balances, set_municipality_cap
from coordinator.models import Principal
from coordinator.principals import create_principal, revoke_principal
from coordinator.routes._common import ERRORS

router = APIRouter(tags=["admin"], responses=ERRORS)
Municipality = Annotated[str, Path(pattern=r"^[a-z0-9_-]{1,48}$")]
Period = Annotated[str, Path(pattern=PERIOD)]
PrincipalName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{1,63}$")]


@router.get("/v1/me", name="whoami", response_model=WhoAmIOut)
def whoami(principal: CurrentPrincipal) -> dict[str, Any]:
    return {"name": principal.name, "role": principal.role, "datasets": sorted(principal.datasets)}


@router.post("/v1/principals", name="create_principal", status_code=201, response_model=NewPrincipalOut)
def add_principal(body: NewPrincipal, principal: CurrentPrincipal, coordinator: CoordinatorDep,
                  session: SessionDep, response: Response) -> dict[str, Any]:
    token = create_principal(coordinator.signer, session, principal.name, body.name, body.role, tuple(body.datasets))
    response.headers["Cache-Control"] = "no-store"   # the token's only appearance: no cache keeps it
    return {"name": body.name, "role": body.role, "datasets": sorted(body.datasets), "token": token}


@router.get("/v1/principals", name="list_principals", response_model=list[PrincipalOut])
def list_principals(principal: CurrentPrincipal, session: SessionDep) -> list[dict[str, Any]]:
    rows = session.execute(select(Principal).order_by(Principal.id)).scalars()
    return [{"name": p.name, "role": p.role, "datasets": json.loads(p.datasets), "created_at": p.created_at,
             "revoked": p.revoked_at is not None} for p in rows]


@router.post("/v1/principals/{name}/revoke", name="revoke_principal", response_model=RevokedPrincipalOut)
def revoke(name: PrincipalName, principal: CurrentPrincipal, coordinator: CoordinatorDep,
           session: SessionDep) -> dict[str, Any]:
    row = revoke_principal(coordinator.signer, session, principal.name, name)
    return {"name": row.name, "role": row.role, "datasets": json.loads(row.datasets), "created_at": row.created_at,
            "revoked": True, "revoked_at": row.revoked_at}


@router.put("/v1/caps/{municipality}/{period}", name="set_municipality_cap", response_model=BalanceOut)
def put_cap(municipality: Municipality, period: Period, body: CapSetting, principal: CurrentPrincipal,
            coordinator: CoordinatorDep, session: SessionDep) -> dict[str, Any]:
    return set_municipality_cap(coordinator, session, principal.name, municipality, period,
                                body.epsilon, body.rho, body.delta).to_json()


@router.get("/v1/caps", name="list_municipality_caps", response_model=list[MunicipalityBalanceOut])
def list_caps(principal: CurrentPrincipal, session: SessionDep,
              period: Annotated[str | None, Query(pattern=PERIOD)] = None) -> list[dict[str, Any]]:
    return [{"municipality": m, **b.to_json()} for m, b in municipality_balances(session, period)]
