"""What every identity-code rule shares: the per-value problem codes, the check's counts, calendar arithmetic.

A rule reads a column of codes and returns, per value, a small integer saying what is wrong (never the
value) and the code's canonical spelling (the form that is hashed, so that ``811218-9876`` and
``198112189876`` become one resident).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "IMPOSSIBLE_DATE",
    "MALFORMED",
    "MISSING",
    "VALID",
    "WRONG_CHECK_CHARACTER",
    "IdentityCheck",
    "Parsed",
    "digit_matrix",
    "problems",
    "real_dates",
    "weighted_mod",
]

#: per-value problem codes of an :class:`IdentityCheck`
VALID, MISSING, MALFORMED, IMPOSSIBLE_DATE, WRONG_CHECK_CHARACTER = range(5)

_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


@dataclass(frozen=True)
class IdentityCheck:
    """What is wrong with each identity code, as a small integer per value — never the code itself."""

    problem: np.ndarray

    def _count(self, code: int) -> int:
        return int((self.problem == code).sum())

    @property
    def valid(self) -> np.ndarray:
        return self.problem == VALID  # type: ignore[no-any-return]

    @property
    def missing(self) -> int:
        return self._count(MISSING)

    @property
    def invalid_format(self) -> int:
        return self._count(MALFORMED)

    @property
    def invalid_date(self) -> int:
        return self._count(IMPOSSIBLE_DATE)

    @property
    def invalid_check_character(self) -> int:
        return self._count(WRONG_CHECK_CHARACTER)

    @property
    def invalid(self) -> int:
        return self.invalid_format + self.invalid_date + self.invalid_check_character

    def take(self, index: np.ndarray) -> IdentityCheck:
        """The check for rows given as positions into the checked values (-1 = missing)."""
        return IdentityCheck(np.where(index < 0, MISSING, self.problem[np.maximum(index, 0)]))


@dataclass(frozen=True)
class Parsed:
    """A rule's answer: the problem per value, and each valid value's canonical spelling (None elsewhere)."""

    problem: np.ndarray
    canonical: np.ndarray

    @classmethod
    def of(cls, problem: np.ndarray, spelling: np.ndarray) -> Parsed:
        """The answer with ``spelling`` kept for the valid values only."""
        canonical = np.full(len(problem), None, dtype=object)
        keep = problem == VALID
        canonical[keep] = spelling[keep]
        return cls(problem, canonical)


def problems(present: np.ndarray, well_formed: np.ndarray, good_date: np.ndarray,
             good_check: np.ndarray) -> np.ndarray:
    """The first thing wrong with each value, in the order a reader would check it."""
    return np.select(
        [~present, ~well_formed, ~good_date, ~good_check],
        [MISSING, MALFORMED, IMPOSSIBLE_DATE, WRONG_CHECK_CHARACTER], default=VALID,
    )


def real_dates(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Whether each (year, month, day) is a day of the Gregorian calendar (leap years included)."""
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_ok = (month >= 1) & (month <= 12)
    last = _DAYS_IN_MONTH[np.where(month_ok, month, 0)] + (leap & (month == 2))
    return month_ok & (day >= 1) & (day <= last)  # type: ignore[no-any-return]


def digit_matrix(text: pd.Series, width: int) -> np.ndarray:
    """Each value's first ``width`` characters as digits 0-9, one row per value (callers pass digits only)."""
    joined = "".join(text.str.slice(0, width).str.pad(width, fillchar="0").tolist())
    return np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(len(text), width).astype(np.int64) - 48


def weighted_mod(digits: np.ndarray, weights: tuple[int, ...], modulus: int) -> np.ndarray:
    """Σ wᵢ·dᵢ mod ``modulus`` over the first ``len(weights)`` digit columns."""
    return (digits[:, : len(weights)] @ np.array(weights, dtype=np.int64)) % modulus
