"""Finnish personal identity codes (henkilötunnus): checking real ones (the generator makes synthetic ones).

Format ``DDMMYYCZZZQ``: birth date, a century sign (``+`` 1800s; ``-``/``Y X W V U`` 1900s;
``A B C D E F`` 2000s), an individual number 002-999 (odd for men, even for women) and a check
character, the remainder of the nine digits ``DDMMYYZZZ`` modulo 31 mapped through
:data:`CHECK_CHARACTERS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "CHECK_CHARACTERS",
    "IMPOSSIBLE_DATE",
    "MALFORMED",
    "MISSING",
    "VALID",
    "WRONG_CHECK_CHARACTER",
    "IdentityCheck",
    "check_identity_codes",
]

CHECK_CHARACTERS = "0123456789ABCDEFHJKLMNPRSTUVWXY"
_PATTERN = r"^\d{6}[-+ABCDEFUVWXY]\d{3}[0-9A-Y]$"


#: per-value problem codes of an :class:`IdentityCheck`
VALID, MISSING, MALFORMED, IMPOSSIBLE_DATE, WRONG_CHECK_CHARACTER = range(5)


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


def check_identity_codes(codes: pd.Series) -> IdentityCheck:
    """Check every code's format, birth date and check character, vectorised."""
    text = codes.astype("str") if codes.dtype != "str" else codes
    present = codes.notna().to_numpy()
    text = text.where(present, "")
    well_formed = text.str.match(_PATTERN).fillna(False).to_numpy(dtype=bool) & present
    well_formed &= text.str.slice(7, 10).where(well_formed, "002").astype("int64").to_numpy() >= 2
    # Everything below only looks at well-formed codes; others get harmless placeholders.
    safe = text.where(well_formed, "010100-0020")
    day = safe.str.slice(0, 2).astype("int64")
    month = safe.str.slice(2, 4).astype("int64")
    yy = safe.str.slice(4, 6).astype("int64")
    sign = safe.str.slice(6, 7)
    century = np.select([sign.eq("+").to_numpy(dtype=bool), sign.isin(list("ABCDEF")).to_numpy(dtype=bool)],
                        [1800, 2000], default=1900)
    births = pd.to_datetime(
        pd.DataFrame({"year": century + yy.to_numpy(), "month": month, "day": day}), errors="coerce"
    )
    good_date = births.notna().to_numpy() & well_formed
    individual = safe.str.slice(7, 10).astype("int64")
    number = (day * 10_000_000 + month * 100_000 + yy * 1_000 + individual).to_numpy()
    expected = np.array(list(CHECK_CHARACTERS))[number % 31]
    good_check = (safe.str.slice(10, 11).to_numpy(dtype=object) == expected) & good_date
    problem = np.select(
        [~present, ~well_formed, ~good_date, ~good_check],
        [MISSING, MALFORMED, IMPOSSIBLE_DATE, WRONG_CHECK_CHARACTER], default=VALID,
    )
    return IdentityCheck(problem)
