from __future__ import annotations

import numpy as np
import pandas as pd

from schemas.identity import IMPOSSIBLE_DATE, MALFORMED, MISSING, VALID, WRONG_CHECK_CHARACTER, check_identity_codes
from schemas.synth import make_identity_codes


def test_known_codes_are_classified() -> None:
    # Prepare: the Digital and Population Data Services Agency's example, its variants and broken ones
    codes = pd.Series(["131052-308T", "131052-308U", "311352-308T", None, "13105-308T", "010594Y9032",
                       "010501A000N"], dtype="str")
    # Execute
    check = check_identity_codes(codes)
    # Assert
    assert check.problem.tolist() == [VALID, WRONG_CHECK_CHARACTER, IMPOSSIBLE_DATE, MISSING, MALFORMED, VALID,
                                      MALFORMED]
    assert (check.missing, check.invalid_format, check.invalid_date, check.invalid_check_character) == (1, 2, 1, 1)


def test_generated_codes_are_valid_unique_and_carry_sex_and_century() -> None:
    # Prepare
    rng = np.random.default_rng(3)
    births = pd.Series(pd.to_datetime(["1899-12-31", "1950-06-01", "2001-02-28"] * 400))
    male = np.tile([True, False, True], 400)
    # Execute
    codes = make_identity_codes(births, male, rng)
    # Assert
    assert check_identity_codes(pd.Series(codes, dtype="str")).valid.all()
    assert len(set(codes)) == len(codes)
    individual = np.array([int(c[7:10]) for c in codes])
    assert ((individual % 2 == 1) == male).all()
    assert all(c[6] == "+" for c in codes[0::3])
    assert all(c[6] in "-YXWVU" for c in codes[1::3])
    assert all(c[6] in "ABCDEF" for c in codes[2::3])


def test_take_expands_checks_to_rows() -> None:
    check = check_identity_codes(pd.Series(["131052-308T", "131052-308U"], dtype="str"))
    rows = check.take(np.array([0, 0, 1, -1]))
    assert rows.problem.tolist() == [VALID, VALID, WRONG_CHECK_CHARACTER, MISSING]
