"""Exact privacy-loss amounts for ledgers: ρ (zCDP) as integers of a small unit, rounded up.

A ledger that adds floats drifts; one that adds integers does not. OpenDP's ρ (a float it already
rounds conservatively) becomes a whole number of nano-ρ, always rounded up, so a sum of charges
is never smaller than the loss it records. Pure: no I/O, no OpenDP measurement, no database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["RHO_UNITS_PER_RHO", "PrivacyLoss"]

#: ledger unit: 1e-9 ρ
RHO_UNITS_PER_RHO = 10**9


@dataclass(frozen=True, order=True)
class PrivacyLoss:
    """A zero-concentrated DP loss ρ, stored exactly as an integer count of 1e-9 ρ."""

    units: int

    def __post_init__(self) -> None:
        if self.units < 0:
            raise ValueError("a privacy loss cannot be negative")

    @classmethod
    def from_rho(cls, rho: float | Fraction) -> PrivacyLoss:
        """Round up to the next unit: the ledger may over-count, never under-count."""
        if rho < 0 or (isinstance(rho, float) and not math.isfinite(rho)):
            raise ValueError(f"invalid rho {rho!r}")
        return cls(math.ceil(Fraction(rho) * RHO_UNITS_PER_RHO))

    @classmethod
    def cap_from_rho(cls, rho: float | Fraction) -> PrivacyLoss:
        """A budget cap: round *down*, so that a cap set as ε at δ never allows more than that ε."""
        if rho < 0 or (isinstance(rho, float) and not math.isfinite(rho)):
            raise ValueError(f"invalid rho {rho!r}")
        return cls(math.floor(Fraction(rho) * RHO_UNITS_PER_RHO))

    @classmethod
    def zero(cls) -> PrivacyLoss:
        return cls(0)

    @property
    def rho(self) -> Fraction:
        return Fraction(self.units, RHO_UNITS_PER_RHO)

    def __add__(self, other: PrivacyLoss) -> PrivacyLoss:
        return PrivacyLoss(self.units + other.units)

    def __sub__(self, other: PrivacyLoss) -> PrivacyLoss:
        return PrivacyLoss(self.units - other.units)

    def __mul__(self, times: int) -> PrivacyLoss:
        return PrivacyLoss(self.units * times)

    def __str__(self) -> str:
        return f"ρ={float(self.rho):.6g}"
