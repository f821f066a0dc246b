"""Principals (admin only) and municipality-wide caps."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from coordinator.authz import CoordinatorDep, CurrentPrincipal
from coordinator.ledger import set_municipality_cap
from coordinator.models import Principal
from coordinator.principals import create_principal
from coordinator.routes._common import ERRORS
from coordinator.schemas import BalanceOut

router = APIRouter(tags=["admin"], responses=ERRORS)


class NewPrincipal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{1,63}$")
    role: str = Field(pattern=r"^(admin|privacy_officer|analyst|node)$")
    datasets: list[str] = Field(default=[], max_length=200)


class CapSetting(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epsilon: float | None = Field(default=None, ge=0.001, le=100)
    rho: float | None = Field(default=None, ge=1e-7, le=100)
    delta: float = Field(default=1e-6, ge=1e-12, lt=1e-2)


@router.get("/v1/me", name="whoami")
def whoami(principal: CurrentPrincipal) -> dict[str, Any]:
    return {"name": principal.name, "role": principal.role, "datasets": sorted(principal.datasets)}


@router.post("/v1/principals", name="create_principal", status_code=201)
def add_principal(body: NewPrincipal, principal: CurrentPrincipal, coordinator: CoordinatorDep) -> dict[str, Any]:
    with coordinator.db.transaction() as session:
        token = create_principal(coordinator, session, principal.name, body.name, body.role, tuple(body.datasets))
    return {"name": body.name, "role": body.role, "datasets": sorted(body.datasets), "token": token}


@router.get("/v1/principals", name="list_principals")
def list_principals(principal: CurrentPrincipal, coordinator: CoordinatorDep) -> list[dict[str, Any]]:
    with coordinator.db.transaction() as session:
        rows = session.execute(select(Principal).order_by(Principal.id)).scalars()
        return [{"name": p.name, "role": p.role, "datasets": json.loads(p.datasets), "created_at": p.created_at,
                 "revoked": p.revoked_at is not None} for p in rows]


@router.put("/v1/caps/{municipality}/{period}", name="set_municipality_cap", response_model=BalanceOut)
def put_cap(municipality: str, period: str, body: CapSetting, principal: CurrentPrincipal,
            coordinator: CoordinatorDep) -> dict[str, Any]:
    with coordinator.db.transaction() as session:
        return set_municipality_cap(coordinator, session, principal.name, municipality, period,
                                    body.epsilon, body.rho, body.delta).to_json()
