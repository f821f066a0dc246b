"""Budget arithmetic — the one owner of "remaining", "fits", caps from ε and the JSON form of an amount.

Pure: no database, no web framework, no I/O. The coordinator's ledger (per dataset and data period,
and per municipality) and each node's own ledger (its local cap) both ask this module whether a
charge fits and how to say that it does not. Amounts are :class:`PrivacyLoss` (integers of 1e-9 ρ);
(ε, δ) is only ever a view computed from ρ by OpenDP's conversion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from common.errors import UsageError
from federation.privacy._accounting import epsilon, rho_for_epsilon
from federation.privacy._loss import PrivacyLoss

__all__ = ["EPSILON_RANGE", "RHO_RANGE", "Balance", "amount_json", "make_cap"]

#: what a budget or cap may be set to, as ε (at the given δ) or directly as ρ
EPSILON_RANGE = (0.001, 100.0)
RHO_RANGE = (1e-7, 100.0)


@dataclass(frozen=True)
class Balance:
    """What one budget (a dataset's, a municipality's cap, or a node's local cap) allows, spent and has left."""

    name: str
    period: str
    cap: PrivacyLoss
    spent: PrivacyLoss
    delta: float

    @property
    def remaining(self) -> PrivacyLoss:
        return self.cap - self.spent if self.cap > self.spent else PrivacyLoss.zero()

    def fits(self, cost: PrivacyLoss) -> bool:
        return self.spent + cost <= self.cap

    def after(self, cost: PrivacyLoss) -> Balance:
        return Balance(self.name, self.period, self.cap, self.spent + cost, self.delta)

    def shortfall(self, cost: PrivacyLoss) -> str:
        """One line for an overspend: how much is asked, how much is left, both as ρ and ε."""
        return (f"{self.name} period {self.period} has {_show(self.remaining, self.delta)} left of "
                f"{_show(self.cap, self.delta)}; this study needs {_show(cost, self.delta)}")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "period": self.period, "delta": self.delta,
                "cap": amount_json(self.cap, self.delta), "spent": amount_json(self.spent, self.delta),
                "remaining": amount_json(self.remaining, self.delta)}


def amount_json(loss: PrivacyLoss, delta: float) -> dict[str, Any]:
    """An amount as every API answer and report shows it: exact units, ρ, and ε at ``delta``."""
    return {"rho": float(loss.rho), "rho_units": loss.units, "epsilon": _epsilon(loss, delta)}


def make_cap(*, epsilon: float | None = None, rho: float | None = None, delta: float) -> PrivacyLoss:
    """A cap given as ε at δ or as ρ (exactly one), rounded down so it never allows more than asked."""
    if (epsilon is None) == (rho is None):
        raise UsageError("give a budget as epsilon (at delta) or as rho, exactly one of them")
    if not (isinstance(delta, float | int) and math.isfinite(delta) and 1e-12 <= delta < 1e-2):
        raise UsageError("delta must be in [1e-12, 0.01)")
    if epsilon is not None:
        if not (math.isfinite(epsilon) and EPSILON_RANGE[0] <= epsilon <= EPSILON_RANGE[1]):
            raise UsageError(f"epsilon must be in [{EPSILON_RANGE[0]:g}, {EPSILON_RANGE[1]:g}]")
        return PrivacyLoss.cap_from_rho(rho_for_epsilon(epsilon, delta))
    assert rho is not None
    if not (math.isfinite(rho) and RHO_RANGE[0] <= rho <= RHO_RANGE[1]):
        raise UsageError(f"rho must be in [{RHO_RANGE[0]:g}, {RHO_RANGE[1]:g}]")
    return PrivacyLoss.cap_from_rho(rho)


def _epsilon(loss: PrivacyLoss, delta: float) -> float:
    return epsilon(float(loss.rho), delta) if loss.units else 0.0


def _show(loss: PrivacyLoss, delta: float) -> str:
    return f"ρ={float(loss.rho):.6g} (ε={_epsilon(loss, delta):.4g} at δ={delta:g})"
