"""Synthetic Finnish identity codes with valid check characters, unique across municipalities."""

from __future__ import annotations

import numpy as np
import pandas as pd

from schemas.identity import CHECK_CHARACTERS

__all__ = ["make_identity_codes"]


def make_identity_codes(birth_dates: pd.Series, male: np.ndarray, rng: np.random.Generator,
                        exclude: frozenset[str] | set[str] = frozenset()) -> np.ndarray:
    """Unique, valid synthetic codes for the given birth dates and sexes.

    Individual numbers are drawn in 002-899 with the parity of the sex and redrawn until every code
    is unique and not in ``exclude`` (codes already given in other municipalities: real codes are
    unique nationally). A small share of 1900s/2000s codes use the century signs introduced in
    2023, so checkers must accept them.
    """
    n = len(birth_dates)
    dates = pd.DatetimeIndex(birth_dates)
    year = dates.year.to_numpy()
    signs = np.where(year >= 2000, "A", np.where(year >= 1900, "-", "+")).astype(object)
    new_sign = rng.random(n) < 0.01
    signs[new_sign & (year >= 2000)] = "B"
    signs[new_sign & (year < 2000) & (year >= 1900)] = "Y"
    ddmmyy_number = dates.day.to_numpy() * 10_000 + dates.month.to_numpy() * 100 + year % 100
    ddmmyy = pd.Series(ddmmyy_number).astype("str").str.zfill(6).to_numpy(dtype=object)
    check_characters = np.array(list(CHECK_CHARACTERS), dtype=object)
    numbers = _draw_numbers(n, male, rng)
    clash = np.ones(n, dtype=bool)
    for _ in range(100):
        nine = ddmmyy_number * 1_000 + numbers
        individual = pd.Series(numbers).astype("str").str.zfill(3).to_numpy(dtype=object)
        codes = ddmmyy + signs + individual + check_characters[nine % 31]
        as_series = pd.Series(codes)
        clash = as_series.duplicated().to_numpy().copy()
        if exclude:
            clash |= as_series.isin(exclude).to_numpy()
        if not clash.any():
            return codes  # type: ignore[no-any-return]
        numbers[clash] = _draw_numbers(int(clash.sum()), male[clash], rng)
    raise ValueError("too many residents share a birth date to give each a unique identity code")


def _draw_numbers(n: int, male: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # 449 odd numbers 003..899 for men, 449 even numbers 002..898 for women
    k = rng.integers(0, 449, size=n)
    return np.where(male, 3 + 2 * k, 2 + 2 * k).astype(np.int64)
