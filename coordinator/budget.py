"""Budget arithmetic: pure, exact, no database and no web framework.

Amounts are :class:`federation.privacy.PrivacyLoss` (integers of 1e-9 ρ); (ε, δ) is only ever a
view computed from ρ by OpenDP's conversion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from federation.privacy import PrivacyLoss, epsilon

__all__ = ["Balance"]


@dataclass(frozen=True)
class Balance:
    """What one budget (a dataset's, or a municipality's cap) allows, has spent and has left."""

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
                "cap": _amount(self.cap, self.delta), "spent": _amount(self.spent, self.delta),
                "remaining": _amount(self.remaining, self.delta)}


def _amount(loss: PrivacyLoss, delta: float) -> dict[str, Any]:
    return {"rho": float(loss.rho), "rho_units": loss.units, "epsilon": _epsilon(loss, delta)}


def _epsilon(loss: PrivacyLoss, delta: float) -> float:
    return epsilon(float(loss.rho), delta) if loss.units else 0.0


def _show(loss: PrivacyLoss, delta: float) -> str:
    return f"ρ={float(loss.rho):.6g} (ε={_epsilon(loss, delta):.4g} at δ={delta:g})"
