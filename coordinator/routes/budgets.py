"""Budgets per dataset and period, and the ledger."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from coordinator.authz import CoordinatorDep, CurrentPrincipal
from coordinator.ledger import balances, ledger_entries, set_budget
from coordinator.routes._common import ERRORS
from coordinator.schemas import BalanceOut, LedgerOut
from federation.privacy import PrivacyLoss

router = APIRouter(tags=["budgets"], responses=ERRORS)


class BudgetSetting(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epsilon: float | None = Field(default=None, ge=0.001, le=100)
    rho: float | None = Field(default=None, ge=1e-7, le=100)
    delta: float = Field(default=1e-6, ge=1e-12, lt=1e-2)


@router.put("/v1/budgets/{municipality}/{sector}/{period}", name="set_budget", response_model=BalanceOut)
def put_budget(municipality: str, sector: str, period: str, body: BudgetSetting, principal: CurrentPrincipal,
               coordinator: CoordinatorDep) -> dict[str, Any]:
    with coordinator.db.transaction() as session:
        return set_budget(coordinator, session, principal.name, f"{municipality}/{sector}", period,
                          body.epsilon, body.rho, body.delta).to_json()


@router.get("/v1/budgets", name="list_budgets", response_model=list[BalanceOut])
def list_budgets(principal: CurrentPrincipal, coordinator: CoordinatorDep, dataset: str | None = None,
                 period: str | None = None) -> list[dict[str, Any]]:
    with coordinator.db.transaction() as session:
        return [b.to_json() for b in balances(session, dataset, period)]


@router.get("/v1/ledger", name="show_ledger", response_model=LedgerOut)
def show_ledger(principal: CurrentPrincipal, coordinator: CoordinatorDep, dataset: str | None = None,
                period: str | None = None) -> dict[str, Any]:
    with coordinator.db.transaction() as session:
        entries = [{"id": e.id, "dataset": e.dataset, "period": e.period, "study_id": e.study_id,
                    "rho": float(PrivacyLoss(e.units).rho), "rho_units": e.units, "at": e.created_at}
                   for e in ledger_entries(session, dataset, period)]
        return {"entries": entries, "balances": [b.to_json() for b in balances(session, dataset, period)]}
