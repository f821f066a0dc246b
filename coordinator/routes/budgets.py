"""Budgets per dataset and period, and the ledger."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from coordinator.api_models import DATASET_ID, PERIOD, BalanceOut, CapSetting, LedgerOut
from coordinator.authz import CoordinatorDep, CurrentPrincipal, SessionDep
from coordinator.ledger import balances, ledger_entries, set_budget
from coordinator.routes._common import ERRORS
from federation.privacy import PrivacyLoss, amount_json

router = APIRouter(tags=["budgets"], responses=ERRORS)
Municipality = Annotated[str, Path(pattern=r"^[a-z0-9_-]{1,48}$")]
Sector = Annotated[str, Path(pattern=r"^[a-z0-9_]{1,48}$")]
Period = Annotated[str, Path(pattern=PERIOD)]
DatasetFilter = Annotated[str | None, Query(pattern=DATASET_ID)]
PeriodFilter = Annotated[str | None, Query(pattern=PERIOD)]


@router.put("/v1/budgets/{municipality}/{sector}/{period}", name="set_budget", response_model=BalanceOut)
def put_budget(municipality: Municipality, sector: Sector, period: Period, body: CapSetting,
               principal: CurrentPrincipal, coordinator: CoordinatorDep, session: SessionDep) -> dict[str, Any]:
    return set_budget(coordinator, session, principal.name, f"{municipality}/{sector}", period,
                      body.epsilon, body.rho, body.delta).to_json()


@router.get("/v1/budgets", name="list_budgets", response_model=list[BalanceOut])
def list_budgets(principal: CurrentPrincipal, session: SessionDep, dataset: DatasetFilter = None,
                 period: PeriodFilter = None) -> list[dict[str, Any]]:
    return [b.to_json() for b in balances(session, dataset, period)]


@router.get("/v1/ledger", name="show_ledger", response_model=LedgerOut)
def show_ledger(principal: CurrentPrincipal, session: SessionDep, dataset: DatasetFilter = None,
                period: PeriodFilter = None) -> dict[str, Any]:
    found = balances(session, dataset, period)
    deltas = {(b.name, b.period): b.delta for b in found}
    entries = [{"id": e.id, "dataset": e.dataset, "period": e.period, "study_id": e.study_id,
                **amount_json(PrivacyLoss(e.units), deltas.get((e.dataset, e.period), 1e-6)), "at": e.created_at}
               for e in ledger_entries(session, dataset, period)]
    return {"entries": entries, "balances": [b.to_json() for b in found]}
