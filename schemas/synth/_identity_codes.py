"""Synthetic Nordic identity codes, valid under their country's rule and unique across municipalities.

Each country's maker draws the random part of a code (an individual or serial number with the parity of
the sex where the country encodes it) and computes the check digits; a drawn number whose check digit
cannot exist is drawn again, like a clash. The rules themselves are in :mod:`schemas.identity`, and the
tests check every generated code against them.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import pandas as pd

from common.errors import UsageError
from schemas.identity import CHECK_CHARACTERS

__all__ = ["COUNTRIES", "Country", "make_identity_codes"]

Country = Literal["fi", "se", "no", "dk", "is"]
COUNTRIES: tuple[Country, ...] = get_args(Country)

#: share of residents given a Swedish samordningsnummer or a Norwegian D-nummer (day + 60 / + 40)
_COORDINATION_SHARE = 0.01


def make_identity_codes(birth_dates: pd.Series, male: np.ndarray, rng: np.random.Generator,
                        exclude: frozenset[str] | set[str] = frozenset(), country: Country = "fi") -> np.ndarray:
    """Unique, valid synthetic codes of ``country`` for the given birth dates and sexes.

    Random parts are redrawn until every code is unique and not in ``exclude`` (codes already given in
    other municipalities: real codes are unique nationally).
    """
    dates = pd.DatetimeIndex(birth_dates)
    male = np.asarray(male, dtype=bool)
    maker = _MAKERS[country](dates, male, rng)
    n = len(dates)
    codes = np.empty(n, dtype=object)
    redraw = np.ones(n, dtype=bool)
    for _ in range(100):
        codes[redraw] = maker.draw(redraw)
        as_series = pd.Series(codes)
        redraw = as_series.isna().to_numpy() | as_series.duplicated().to_numpy()
        if exclude:
            redraw |= as_series.isin(exclude).to_numpy()
        if not redraw.any():
            return codes
    raise UsageError(f"too many residents share a birth date to give each a unique {country} identity code "
                     f"(at most about {maker.per_day} per day); generate fewer residents or municipalities")


class _Maker:
    """Draws the codes of the residents at ``mask`` (None where the drawn number has no valid check digit)."""

    #: about how many distinct codes one birth date allows
    per_day = 0

    def __init__(self, dates: pd.DatetimeIndex, male: np.ndarray, rng: np.random.Generator) -> None:
        self.rng, self.male = rng, male
        self.year = dates.year.to_numpy()
        self.month = dates.month.to_numpy()
        self.day = dates.day.to_numpy()

    def draw(self, mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _serial(self, mask: np.ndarray, values: int) -> np.ndarray:
        """A number in 0 .. 2·values−1 whose parity is the sex (odd for men), as in SE, NO, DK and FI."""
        return 2 * self.rng.integers(0, values, size=int(mask.sum())) + self.male[mask]  # type: ignore[no-any-return]


def _text(numbers: np.ndarray, width: int) -> pd.Series:
    return pd.Series(numbers).astype("str").str.zfill(width)


def _array(text: pd.Series) -> np.ndarray:
    codes: np.ndarray = text.to_numpy(dtype=object)
    return codes


def _digits(text: pd.Series, width: int) -> np.ndarray:
    return np.frombuffer("".join(text).encode(), dtype=np.uint8).reshape(-1, width).astype(np.int64) - 48


class _Finnish(_Maker):
    """``DDMMYYCZZZQ``: individual numbers 002-899 with the parity of the sex; 1 % use the 2023 century signs."""

    per_day = 449

    def __init__(self, dates: pd.DatetimeIndex, male: np.ndarray, rng: np.random.Generator) -> None:
        super().__init__(dates, male, rng)
        year = self.year
        signs = np.where(year >= 2000, "A", np.where(year >= 1900, "-", "+")).astype(object)
        new_sign = rng.random(len(year)) < 0.01
        signs[new_sign & (year >= 2000)] = "B"
        signs[new_sign & (year < 2000) & (year >= 1900)] = "Y"
        self.signs = signs
        self.ddmmyy = self.day * 10_000 + self.month * 100 + year % 100

    def draw(self, mask: np.ndarray) -> np.ndarray:
        # 449 odd numbers 003..899 for men, 449 even numbers 002..898 for women
        k = self.rng.integers(0, 449, size=int(mask.sum()))
        numbers = np.where(self.male[mask], 3 + 2 * k, 2 + 2 * k).astype(np.int64)
        nine = self.ddmmyy[mask] * 1_000 + numbers
        check = np.array(list(CHECK_CHARACTERS), dtype=object)[nine % 31]
        return _array(_text(self.ddmmyy[mask], 6) + self.signs[mask] + _text(numbers, 3) + check)


class _Swedish(_Maker):
    """``YYYYMMDDNNNC`` (the 12-digit form of registers): serial parity = sex, Luhn check digit; 1 % are
    samordningsnummer (day + 60)."""

    per_day = 500

    def __init__(self, dates: pd.DatetimeIndex, male: np.ndarray, rng: np.random.Generator) -> None:
        super().__init__(dates, male, rng)
        written_day = self.day + 60 * (rng.random(len(dates)) < _COORDINATION_SHARE)
        self.yymmdd = (self.year % 100) * 10_000 + self.month * 100 + written_day

    def draw(self, mask: np.ndarray) -> np.ndarray:
        nine = _text(self.yymmdd[mask] * 1_000 + self._serial(mask, 500), 9)
        doubled = _digits(nine, 9) * np.array([2, 1, 2, 1, 2, 1, 2, 1, 2])
        check = (10 - (doubled // 10 + doubled % 10).sum(axis=1) % 10) % 10
        century = _text(self.year[mask] // 100, 2)
        return _array(century + nine + _text(check, 1))


class _Norwegian(_Maker):
    """``DDMMYYIIIKK``: the individual number's range gives the century, its parity the sex; two mod-11 check
    digits (a number whose digit would be 10 is drawn again); 1 % are D-nummer (day + 40)."""

    per_day = 160

    def __init__(self, dates: pd.DatetimeIndex, male: np.ndarray, rng: np.random.Generator) -> None:
        super().__init__(dates, male, rng)
        if ((self.year < 1854) | (self.year > 2039)).any():
            raise ValueError("Norwegian codes exist for births in 1854-2039 only")
        written_day = self.day + 40 * (rng.random(len(dates)) < _COORDINATION_SHARE)
        self.ddmmyy = written_day * 10_000 + self.month * 100 + self.year % 100
        # 1854-1899: 500-749; 1900-1999: 000-499; 2000-2039: 500-999
        self.first = np.where(self.year < 1900, 500, np.where(self.year < 2000, 0, 500))
        self.pairs = np.where(self.year < 1900, 125, 250)

    def draw(self, mask: np.ndarray) -> np.ndarray:
        pairs = self.pairs[mask]
        individual = self.first[mask] + 2 * self.rng.integers(0, pairs) + self.male[mask]
        nine = _text(self.ddmmyy[mask] * 1_000 + individual, 9)
        digits = _digits(nine, 9)
        k1 = (11 - digits @ np.array([3, 7, 6, 1, 8, 9, 4, 5, 2]) % 11) % 11
        k2 = (11 - (digits @ np.array([5, 4, 3, 2, 7, 6, 5, 4, 3]) + 2 * k1) % 11) % 11
        codes = _array(nine + _text(k1, 1) + _text(k2, 1))
        codes[(k1 == 10) | (k2 == 10)] = None
        return codes


class _Danish(_Maker):
    """``DDMMYY-SSSS``: the first sequence digit gives the century (0-3 1900s, 4 or 9 2000-2036, 5-8 1858-1899
    and 2037-2057), the last one's parity the sex; no modulus-11 check (not required since 2007)."""

    per_day = 2_000

    def __init__(self, dates: pd.DatetimeIndex, male: np.ndarray, rng: np.random.Generator) -> None:
        super().__init__(dates, male, rng)
        if ((self.year < 1858) | (self.year > 2057)).any():
            raise ValueError("Danish codes exist for births in 1858-2057 only")
        self.ddmmyy = self.day * 10_000 + self.month * 100 + self.year % 100

    def draw(self, mask: np.ndarray) -> np.ndarray:
        year = self.year[mask]
        first = np.where((year >= 1900) & (year < 2000), self.rng.integers(0, 4, len(year)),
                         np.where((year >= 2000) & (year <= 2036), self.rng.choice([4, 9], len(year)),
                                  self.rng.integers(5, 9, len(year))))
        sequence = first * 1_000 + self._serial(mask, 500)
        return _array(_text(self.ddmmyy[mask], 6) + "-" + _text(sequence, 4))


class _Icelandic(_Maker):
    """``DDMMYY-RRCV``: RR from 20 to 99, C the mod-11 check digit of codes issued before 2026 (a number whose
    digit would be 10 is drawn again), V the century (8, 9 or 0). The sex is not encoded."""

    per_day = 70

    def __init__(self, dates: pd.DatetimeIndex, male: np.ndarray, rng: np.random.Generator) -> None:
        super().__init__(dates, male, rng)
        if ((self.year < 1800) | (self.year > 2099)).any():
            raise ValueError("Icelandic codes exist for births in 1800-2099 only")
        self.ddmmyy = self.day * 10_000 + self.month * 100 + self.year % 100
        self.century = (self.year // 100 - 10) % 10   # 1800s → 8, 1900s → 9, 2000s → 0

    def draw(self, mask: np.ndarray) -> np.ndarray:
        eight = _text(self.ddmmyy[mask] * 100 + self.rng.integers(20, 100, int(mask.sum())), 8)
        remainder = _digits(eight, 8) @ np.array([3, 2, 7, 6, 5, 4, 3, 2]) % 11
        check = (11 - remainder) % 11
        codes = _array(eight.str.slice(0, 6) + "-" + eight.str.slice(6) + _text(check, 1)
                       + _text(self.century[mask], 1))
        codes[check == 10] = None
        return codes


_MAKERS: dict[Country, type[_Maker]] = {"fi": _Finnish, "se": _Swedish, "no": _Norwegian, "dk": _Danish,
                                        "is": _Icelandic}
