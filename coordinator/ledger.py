"""Budgets and the append-only ledger, in the database. The arithmetic is in :mod:`federation.privacy.budget`.

A study is charged on every dataset it touches, all or nothing, before its spec is signed — so
before any node can release anything. Charges are idempotent per (study, dataset, period) and
never refunded. Concurrent charges are serialised: the dataset rows (and municipality) are locked
in a fixed order, then the sums are read and checked. Every budget, cap and charge is an audit entry that
carries its whole row (``rho_units`` is the cap or the charge in 1e-9 ρ), so the chain alone gives the
balances ``tillit audit verify`` compares the tables with.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common.errors import BudgetExceeded, NotFound, UsageError
from coordinator import audit
from coordinator.clock import now
from coordinator.models import Budget, Dataset, LedgerEntry, MunicipalityCap
from federation.privacy import Balance, PrivacyLoss, make_cap

if TYPE_CHECKING:
    from coordinator.state import Coordinator

__all__ = ["balance", "balances", "charge", "ledger_entries", "municipality_balance", "municipality_balances",
           "set_budget", "set_municipality_cap"]


def set_budget(coordinator: Coordinator, session: Session, actor: str, dataset: str, period: str,
               epsilon: float | None, rho: float | None, delta: float) -> Balance:
    if session.get(Dataset, dataset) is None:
        raise NotFound(f"dataset {dataset} is not registered (its node enrolls it)")
    cap = make_cap(epsilon=epsilon, rho=rho, delta=delta)
    session.add(Budget(dataset=dataset, period=period, cap_units=cap.units, delta=delta, set_by=actor,
                       set_at=now()))
    audit.append(session, coordinator.signer, actor, "budget.set", f"{dataset}@{period}",
                 {"dataset": dataset, "period": period, "rho_units": cap.units, "delta": delta})
    found = balance(session, dataset, period)
    assert found is not None
    return found


def set_municipality_cap(coordinator: Coordinator, session: Session, actor: str, municipality: str,
                         period: str, epsilon: float | None, rho: float | None, delta: float) -> Balance:
    cap = make_cap(epsilon=epsilon, rho=rho, delta=delta)
    session.add(MunicipalityCap(municipality=municipality, period=period, cap_units=cap.units, delta=delta,
                                set_by=actor, set_at=now()))
    audit.append(session, coordinator.signer, actor, "cap.set", f"{municipality}@{period}",
                 {"municipality": municipality, "period": period, "rho_units": cap.units, "delta": delta})
    found = municipality_balance(session, municipality, period)
    assert found is not None
    return found


def _spent(session: Session, period: str, dataset: str | None = None, municipality: str | None = None) -> PrivacyLoss:
    query = select(func.coalesce(func.sum(LedgerEntry.units), 0)).where(LedgerEntry.period == period)
    if dataset is not None:
        query = query.where(LedgerEntry.dataset == dataset)
    if municipality is not None:
        query = query.where(LedgerEntry.dataset.in_(select(Dataset.id).where(Dataset.municipality == municipality)))
    return PrivacyLoss(int(session.execute(query).scalar_one()))


def balance(session: Session, dataset: str, period: str) -> Balance | None:
    budget = session.execute(select(Budget).where(Budget.dataset == dataset, Budget.period == period)
                             .order_by(Budget.id.desc()).limit(1)).scalar_one_or_none()
    if budget is None:
        return None
    return Balance(dataset, period, PrivacyLoss(budget.cap_units), _spent(session, period, dataset=dataset),
                   budget.delta)


def municipality_balance(session: Session, municipality: str, period: str) -> Balance | None:
    cap = session.execute(select(MunicipalityCap).where(MunicipalityCap.municipality == municipality,
                                                        MunicipalityCap.period == period)
                          .order_by(MunicipalityCap.id.desc()).limit(1)).scalar_one_or_none()
    if cap is None:
        return None
    return Balance(f"municipality {municipality} (per resident, all silos)", period, PrivacyLoss(cap.cap_units),
                   _spent(session, period, municipality=municipality), cap.delta)


def municipality_balances(session: Session, period: str | None = None) -> list[tuple[str, Balance]]:
    """Every municipality cap in force (the latest per municipality and period), with what was spent against it."""
    query = select(MunicipalityCap.municipality, MunicipalityCap.period).distinct()
    if period:
        query = query.where(MunicipalityCap.period == period)
    found = [(m, municipality_balance(session, m, p)) for m, p in sorted((r[0], r[1]) for r in session.execute(query))]
    return [(m, b) for m, b in found if b is not None]


def balances(session: Session, dataset: str | None = None, period: str | None = None) -> list[Balance]:
    query = select(Budget.dataset, Budget.period).distinct()
    if dataset:
        query = query.where(Budget.dataset == dataset)
    if period:
        query = query.where(Budget.period == period)
    found = [balance(session, d, p) for d, p in sorted((row[0], row[1]) for row in session.execute(query))]
    return [b for b in found if b is not None]


def ledger_entries(session: Session, dataset: str | None = None, period: str | None = None) -> list[LedgerEntry]:
    query = select(LedgerEntry).order_by(LedgerEntry.id)
    if dataset:
        query = query.where(LedgerEntry.dataset == dataset)
    if period:
        query = query.where(LedgerEntry.period == period)
    return list(session.execute(query).scalars())


def charge(coordinator: Coordinator, session: Session, actor: str, study_id: str, period: str,
           costs: dict[str, PrivacyLoss]) -> bool:
    """Charge every dataset its cost, or none; False if this study was charged already (idempotent)."""
    # lock the touched datasets in a fixed order: concurrent charges on a dataset queue up here
    rows = session.execute(select(Dataset).where(Dataset.id.in_(sorted(costs))).order_by(Dataset.id)
                           .with_for_update()).scalars().all()
    missing = sorted(set(costs) - {row.id for row in rows})
    if missing:
        raise NotFound(f"dataset {missing[0]} is not registered")
    existing = {e.dataset: e for e in session.execute(select(LedgerEntry).where(
        LedgerEntry.study_id == study_id, LedgerEntry.period == period)).scalars()}
    if existing:
        if set(existing) != set(costs) or any(existing[d].units != c.units for d, c in costs.items()):
            raise UsageError(f"study {study_id} was charged before with other amounts; refusing to charge again")
        return False
    per_municipality: dict[str, PrivacyLoss] = defaultdict(PrivacyLoss.zero)
    for dataset, cost in sorted(costs.items()):
        found = balance(session, dataset, period)
        if found is None:
            raise BudgetExceeded(f"{dataset} has no budget for period {period}; its privacy officer sets one first")
        if not found.fits(cost):
            raise BudgetExceeded(f"overspend refused: {found.shortfall(cost)}")
        municipality = dataset.split("/", 1)[0]
        per_municipality[municipality] = per_municipality[municipality] + cost
    for municipality, total in sorted(per_municipality.items()):
        capped = municipality_balance(session, municipality, period)
        if capped is not None and not capped.fits(total):
            raise BudgetExceeded(f"overspend refused: {capped.shortfall(total)}")
    at = now()
    for dataset, cost in sorted(costs.items()):
        session.add(LedgerEntry(dataset=dataset, period=period, study_id=study_id, units=cost.units, created_at=at))
        audit.append(session, coordinator.signer, actor, "ledger.charge", f"{dataset}@{period}",
                     {"dataset": dataset, "period": period, "study_id": study_id, "rho_units": cost.units})
    return True
