"""The five Nordic personal identity codes, each checked by its own rule, vectorised.

Every function takes the codes as text (``""`` where missing) with a mask of the present ones, and
returns a :class:`Parsed`: the first problem per value (format, then birth date, then check digit) and
the canonical spelling that the node hashes. Sources for each rule are in its docstring; the rules
were cross-checked value by value against ``python-stdnum`` 2.2 on random codes (not a dependency).
A birth date in the future is not refused by any rule: a check must give the same verdict on the
same extract on any day (only the Swedish short form needs today's year, to know its century).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from schemas.identity._base import Parsed, digit_matrix, problems, real_dates, weighted_mod

__all__ = ["CHECK_CHARACTERS", "danish", "finnish", "icelandic", "norwegian", "swedish"]

#: the Finnish check characters: the remainder of DDMMYYZZZ modulo 31 indexes this string
CHECK_CHARACTERS = "0123456789ABCDEFHJKLMNPRSTUVWXY"
_FI = r"^\d{6}[-+ABCDEFUVWXY]\d{3}[0-9A-Y]$"
_SE = r"^(?:\d{2})?\d{6}[-+]?\d{4}$"
_NO = r"^\d{6}[ -]?\d{5}$"
_TEN_DIGITS = r"^\d{6}-?\d{4}$"   # Danish CPR and Icelandic kennitala: DDMMYY-NNNN, the hyphen optional


def _matches(text: pd.Series, pattern: str, present: np.ndarray) -> np.ndarray:
    return text.str.match(pattern).fillna(False).to_numpy(dtype=bool) & present  # type: ignore[no-any-return]


def _parsed(canonical: pd.Series, problem: np.ndarray) -> Parsed:
    return Parsed.of(problem, canonical.to_numpy(dtype=object))


def _two(digits: np.ndarray, at: int) -> np.ndarray:
    return digits[:, at] * 10 + digits[:, at + 1]  # type: ignore[no-any-return]


def finnish(text: pd.Series, present: np.ndarray) -> Parsed:
    """Finnish henkilötunnus ``DDMMYYCZZZQ`` (Digital and Population Data Services Agency, DVV).

    Birth date; a century sign — ``+`` 1800s, ``-`` and (since 2023) ``Y X W V U`` 1900s, ``A`` and (since
    2023) ``B C D E F`` 2000s; an individual number 002-999 (900-999 temporary codes); a check character,
    the remainder of the nine digits ``DDMMYYZZZ`` modulo 31 mapped through :data:`CHECK_CHARACTERS`.
    The code is hashed as written: the new century signs make new codes, not new spellings.
    """
    well_formed = _matches(text, _FI, present)
    well_formed &= text.str.slice(7, 10).where(well_formed, "002").astype("int64").to_numpy() >= 2
    safe = text.where(well_formed, "010100-0020")
    day = safe.str.slice(0, 2).astype("int64").to_numpy()
    month = safe.str.slice(2, 4).astype("int64").to_numpy()
    yy = safe.str.slice(4, 6).astype("int64").to_numpy()
    sign = safe.str.slice(6, 7)
    century = np.select([sign.eq("+").to_numpy(dtype=bool), sign.isin(list("ABCDEF")).to_numpy(dtype=bool)],
                        [1800, 2000], default=1900)
    good_date = real_dates(century + yy, month, day) & well_formed
    individual = safe.str.slice(7, 10).astype("int64").to_numpy()
    number = day * 10_000_000 + month * 100_000 + yy * 1_000 + individual
    expected = np.array(list(CHECK_CHARACTERS))[number % 31]
    good_check = (safe.str.slice(10, 11).to_numpy(dtype=object) == expected) & good_date
    return _parsed(text, problems(present, well_formed, good_date, good_check))


def swedish(text: pd.Series, present: np.ndarray, today: dt.date | None = None) -> Parsed:
    """Swedish personnummer and samordningsnummer (Skatteverket, SKV 704; Folkbokföringslagen 1991:481 §18).

    Written ``YYMMDD-NNNC`` (``+`` instead of ``-`` from the year the person turns 100), ``YYMMDDNNNC``, or
    with the century as ``YYYYMMDDNNNC`` / ``YYYYMMDD-NNNC``. A samordningsnummer (coordination number, for
    people not or no longer registered in Sweden) adds 60 to the day. The check digit C makes the ten digits
    ``YYMMDDNNNC`` pass the Luhn (mod 10) test. The short form's century is the latest one that puts the
    birth year at or before ``today``'s year (one century earlier with ``+``). Hashed as the 12 digits
    ``YYYYMMDDNNNC``, so both spellings of one person are one resident.
    """
    well_formed = _matches(text, _SE, present)
    safe = text.where(well_formed, "0001010000")
    digits_only = safe.str.replace(r"[-+]", "", regex=True)
    long_form = (digits_only.str.len() == 12).to_numpy(dtype=bool)
    sign = safe.str.slice(-5, -4).to_numpy(dtype=object)                         # '-', '+' or a digit
    well_formed &= ~(long_form & (sign == "+"))                                  # a century needs no '+'
    cc = digits_only.str.slice(0, 2).where(long_form, "19")
    well_formed &= cc.isin(["18", "19", "20"]).to_numpy(dtype=bool)
    ten = digits_only.str.slice(-10).where(well_formed, "0001010000")
    digits = digit_matrix(ten, 10)
    yy, month, written_day = _two(digits, 0), _two(digits, 2), _two(digits, 4)
    day = np.where(written_day > 60, written_day - 60, written_day)              # samordningsnummer
    year_now = (today or dt.date.today()).year
    short_century = year_now // 100 - (yy > year_now % 100) - (sign == "+")
    long_century = cc.astype("int64").to_numpy()
    year = np.where(long_form, long_century, short_century) * 100 + yy
    good_date = real_dates(year, month, day) & well_formed
    doubled = digits * np.array([2, 1, 2, 1, 2, 1, 2, 1, 2, 1])
    good_check = ((doubled // 10 + doubled % 10).sum(axis=1) % 10 == 0) & good_date
    canonical = pd.Series(year, index=text.index).astype("str").str.zfill(4) + ten.str.slice(2)
    return _parsed(canonical, problems(present, well_formed, good_date, good_check))


def norwegian(text: pd.Series, present: np.ndarray) -> Parsed:
    """Norwegian fødselsnummer, D-nummer and H-nummer ``DDMMYYIIIKK`` (Skatteetaten; fnrinfo.no).

    A D-nummer (foreign nationals) adds 40 to the day, an H-nummer (help number in health care) 40 to the
    month. The individual number III with the two-digit year gives the century: 000-499 1900-1999, 500-749
    with YY ≥ 54 1854-1899, 500-999 with YY < 40 2000-2039, 900-999 with YY ≥ 40 1940-1999; any other
    combination has no birth date. Two mod-11 check digits: K1 = 11 − (3 7 6 1 8 9 4 5 2 · DDMMYYIII) mod 11,
    K2 = 11 − (5 4 3 2 7 6 5 4 3 2 · DDMMYYIIIK1) mod 11 (11 → 0; a number whose digit would be 10 is never
    issued). Skatteetaten's numbers issued from 1 January 2032 will allow K1's sum to leave remainder 0-3
    and no longer encode the century; this checker follows today's rule and must change with it. One space
    or hyphen after the date is tolerated; hashed as the 11 digits.
    """
    well_formed = _matches(text, _NO, present)
    eleven = text.str.replace(r"[ -]", "", regex=True).where(well_formed, "01010000000")
    digits = digit_matrix(eleven, 11)
    written_day, written_month, yy = _two(digits, 0), _two(digits, 2), _two(digits, 4)
    individual = digits[:, 6] * 100 + digits[:, 7] * 10 + digits[:, 8]
    day = np.where(written_day > 40, written_day - 40, written_day)              # D-nummer
    month = np.where(written_month > 40, written_month - 40, written_month)      # H-nummer
    century = np.select(
        [individual < 500, (individual < 750) & (yy >= 54), yy < 40, individual >= 900],
        [1900, 1800, 2000, 1900], default=0)
    good_date = (century > 0) & real_dates(century + yy, month, day) & well_formed
    k1 = (11 - weighted_mod(digits, (3, 7, 6, 1, 8, 9, 4, 5, 2), 11)) % 11
    k2 = (11 - weighted_mod(digits, (5, 4, 3, 2, 7, 6, 5, 4, 3, 2), 11)) % 11
    good_check = (k1 == digits[:, 9]) & (k2 == digits[:, 10]) & good_date
    return _parsed(eleven, problems(present, well_formed, good_date, good_check))


def danish(text: pd.Series, present: np.ndarray) -> Parsed:
    """Danish CPR number ``DDMMYY-SSSS`` (CPR-kontoret; Personal identification number (Denmark)).

    Birth date; the first digit of the sequence number gives the century: 0-3 1900s; 4 and 9 2000s for
    YY ≤ 36, else 1900s; 5-8 2000s for YY ≤ 57, else 1800s. **No check digit is required**: until 2007 every
    CPR number satisfied Σ (4 3 2 7 6 5 4 3 2 1 · digits) ≡ 0 (mod 11), but the sequence numbers of some
    birth dates ran out and since 1 October 2007 the CPR office issues numbers that fail this modulus-11
    test; it holds for no class of codes either (immigrants get numbers for old birth dates too). A checker
    that still applied it would refuse real residents, so a code failing it is valid here. The hyphen is
    optional; hashed as the 10 digits.
    """
    well_formed = _matches(text, _TEN_DIGITS, present)
    ten = text.str.replace("-", "", regex=False).where(well_formed, "0101000000")
    digits = digit_matrix(ten, 10)
    day, month, yy, first = _two(digits, 0), _two(digits, 2), _two(digits, 4), digits[:, 6]
    century = np.select(
        [first <= 3, np.isin(first, (4, 9)) & (yy <= 36), np.isin(first, (4, 9)), yy <= 57],
        [1900, 2000, 1900, 2000], default=1800)
    good_date = real_dates(century + yy, month, day) & well_formed
    return _parsed(ten, problems(present, well_formed, good_date, good_date))


def icelandic(text: pd.Series, present: np.ndarray) -> Parsed:
    """Icelandic kennitala ``DDMMYY-RRCV`` (Þjóðskrá Íslands / Registers Iceland, skra.is).

    Birth date; two digits RR (assigned from 20 upwards); C, which was a mod-11 check digit
    (11 − (3 2 7 6 5 4 3 2 · DDMMYYRR) mod 11); V the century — 8 1800s, 9 1900s, 0 2000s. **C is not
    checked**: Registers Iceland issues kennitölur without a computed check digit from 18 February 2026
    (skra.is, "Kennitölur án vartölu") and asks every system to drop the check-digit test so that data
    transfers do not break. An organisation's kennitala (day + 40) is not a resident's and has no birth date
    here. The hyphen is optional; hashed as the 10 digits.
    """
    well_formed = _matches(text, _TEN_DIGITS, present)
    ten = text.str.replace("-", "", regex=False).where(well_formed, "0101000009")
    digits = digit_matrix(ten, 10)
    century = np.select([digits[:, 9] == 8, digits[:, 9] == 9, digits[:, 9] == 0], [1800, 1900, 2000], default=0)
    well_formed &= century > 0
    good_date = real_dates(century + _two(digits, 4), _two(digits, 2), _two(digits, 0)) & well_formed
    return _parsed(ten, problems(present, well_formed, good_date, good_date))
