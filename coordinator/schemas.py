"""Response bodies of the coordinator's API, so that its OpenAPI document says what each answer holds.

Services build plain dicts; routes declare these models, and FastAPI validates every answer
against them (a mismatch is a bug that the Schemathesis test catches).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["Amount", "BalanceOut", "Decision", "LedgerEntryOut", "LedgerOut", "StudyCost", "StudyOut"]


class Amount(BaseModel):
    rho: float
    rho_units: int
    epsilon: float


class BalanceOut(BaseModel):
    """A budget: the cap set for a dataset (or municipality) and period, what was spent, what is left."""

    name: str
    period: str
    delta: float
    cap: Amount
    spent: Amount
    remaining: Amount


class LedgerEntryOut(BaseModel):
    id: int
    dataset: str
    period: str
    study_id: str
    rho: float
    rho_units: int
    at: str


class LedgerOut(BaseModel):
    entries: list[LedgerEntryOut]
    balances: list[BalanceOut]


class StudyCost(BaseModel):
    rho: float
    rho_units: int
    epsilon: float


class Decision(BaseModel):
    dataset: str
    officer: str
    decision: str
    reason: str
    at: str


class StudyOut(BaseModel):
    id: str
    name: str
    template: str
    params: dict[str, Any]
    purpose: str
    legal_basis: str
    organisation: str
    contact: str
    period: str
    analyst: str
    status: str
    datasets: list[str]
    delta: float
    cost: dict[str, StudyCost]
    approvals: list[Decision]
    signed: bool
    created_at: str
    approved_at: str | None
    launched_at: str | None
    finished_at: str | None
    run_id: str | None
    progress: dict[str, Any] | None
    error: dict[str, Any] | None
