"""Resident keys: each Nordic identity code by its own rule (public example numbers only), opaque upstream
pseudonyms, canonical spellings, and the generator's codes for every country."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from common.errors import UsageError
from schemas.identity import (
    IMPOSSIBLE_DATE, MALFORMED, MISSING, VALID, WRONG_CHECK_CHARACTER, IdentityRule, canonical_identity_codes,
    check_identity_codes, parse_identity_codes,
)
from schemas.synth import COUNTRIES, make_identity_codes

#: per format: (code, expected problem) — valid examples published by the issuing authorities or in the
#: documentation of python-stdnum and other validators, and broken variants of them
CASES: dict[str, list[tuple[str | None, int]]] = {
    "fi": [("131052-308T", VALID), ("010594Y9032", VALID), ("131052-308U", WRONG_CHECK_CHARACTER),
           ("311352-308T", IMPOSSIBLE_DATE), ("13105-308T", MALFORMED), ("010501A000N", MALFORMED), (None, MISSING)],
    "se": [("880320-0016", VALID), ("8803200016", VALID), ("198803200016", VALID), ("19880320-0016", VALID),
           ("811228-9841", VALID), ("701063-2391", VALID),           # samordningsnummer: day 10 + 60
           ("880320-0018", WRONG_CHECK_CHARACTER), ("880230-0016", IMPOSSIBLE_DATE), ("701093-2391", IMPOSSIBLE_DATE),
           ("88032-00016", MALFORMED), ("19880320+0016", MALFORMED), ("21880320-0016", MALFORMED), (None, MISSING)],
    "no": [("15108695088", VALID), ("151086 95088", VALID), ("01010750160", VALID),
           ("41010199946", VALID),                                    # D-nummer: day + 40
           ("13527248013", VALID),                                    # H-nummer: month + 40
           ("15108695077", WRONG_CHECK_CHARACTER), ("31029912345", IMPOSSIBLE_DATE),
           ("01017080000", IMPOSSIBLE_DATE),                          # individual 800 with YY 70: no century
           ("1510869508", MALFORMED), ("A5108695088", MALFORMED), (None, MISSING)],
    "dk": [("070761-4285", VALID), ("2110625629", VALID),
           ("010100-1234", VALID),                                    # fails modulus 11: valid since 2007
           ("300293-1234", IMPOSSIBLE_DATE), ("511062-5629", IMPOSSIBLE_DATE),
           ("211062/5629", MALFORMED), ("21106256", MALFORMED), (None, MISSING)],
    "is": [("120160-3389", VALID), ("1201743399", VALID),
           ("120160-3379", VALID),                                    # fails the check digit: valid since Feb 2026
           ("320174-3399", IMPOSSIBLE_DATE), ("530575-0299", IMPOSSIBLE_DATE),   # an organisation (day + 40)
           ("120174-3397", MALFORMED), ("12017-43399", MALFORMED), (None, MISSING)],
}


@pytest.mark.parametrize("fmt", sorted(CASES))
def test_each_nordic_format_classifies_valid_and_broken_codes(fmt: str) -> None:
    # Prepare
    codes, expected = zip(*CASES[fmt])
    # Execute
    check = check_identity_codes(pd.Series(codes, dtype="str"), IdentityRule(fmt))  # type: ignore[arg-type]
    # Assert
    assert dict(zip(codes, check.problem.tolist())) == dict(zip(codes, expected))


def test_the_check_counts_each_problem_kind() -> None:
    codes = pd.Series([c for c, _ in CASES["fi"]], dtype="str")
    check = check_identity_codes(codes)
    assert (check.missing, check.invalid_format, check.invalid_date, check.invalid_check_character) == (1, 2, 1, 1)
    assert check.invalid == 4 and int(check.valid.sum()) == 2


def test_a_danish_code_failing_modulus_11_is_valid_and_one_passing_it_too() -> None:
    # 070761-4285 is the CPR office's own modulus-11 example; 010100-1234 fails the test
    weights = np.array([4, 3, 2, 7, 6, 5, 4, 3, 2, 1])
    sums = [int(np.array([int(d) for d in c.replace("-", "")]) @ weights) % 11 for c in ("070761-4285", "010100-1234")]
    assert sums[0] == 0 and sums[1] != 0
    assert check_identity_codes(pd.Series(["070761-4285", "010100-1234"], dtype="str"), "dk").valid.all()


@pytest.mark.parametrize(("fmt", "spellings", "canonical"), [
    ("se", ["880320-0016", "8803200016", "198803200016", "19880320-0016"], "198803200016"),
    ("no", ["15108695088", "151086 95088", "151086-95088"], "15108695088"),
    ("dk", ["070761-4285", "0707614285"], "0707614285"),
    ("is", ["120160-3389", "1201603389"], "1201603389"),
    ("fi", ["131052-308T"], "131052-308T"),
])
def test_every_spelling_of_one_code_has_one_canonical_form(fmt: str, spellings: list[str], canonical: str) -> None:
    # Execute
    check, found = canonical_identity_codes(pd.Series([*spellings, "nonsense", None], dtype="str"), fmt)  # type: ignore[arg-type]
    # Assert: one resident, whatever the extract's spelling; nothing for what is not a code
    assert found.iloc[: len(spellings)].tolist() == [canonical] * len(spellings)
    assert found.iloc[len(spellings):].isna().all() and check.valid.sum() == len(spellings)


def test_a_swedish_short_code_takes_its_century_from_today_and_its_sign() -> None:
    codes = pd.Series(["121212-1212", "121212+1212"], dtype="str")
    in_2026 = parse_identity_codes(codes, "se", today=dt.date(2026, 12, 1)).canonical.tolist()
    in_2010 = parse_identity_codes(codes, "se", today=dt.date(2010, 1, 1)).canonical.tolist()
    assert in_2026 == ["201212121212", "191212121212"]
    assert in_2010 == ["191212121212", "181212121212"]


def _luhn_digit(nine: str) -> str:
    doubled = [int(d) * (2 - i % 2) for i, d in enumerate(nine)]
    return str(-sum(v // 10 + v % 10 for v in doubled) % 10)


def test_a_swedish_leap_day_needs_a_leap_year() -> None:
    # Prepare: 29 Feb 2000 exists, 29 Feb 1900 does not (a '+' puts a short 00 code in the 1900s)
    tail = "123" + _luhn_digit("000229123")
    codes = [f"000229-{tail}", f"000229+{tail}", f"19000229{tail}", f"20000229{tail}"]
    # Execute
    problems = check_identity_codes(pd.Series(codes, dtype="str"), "se").problem.tolist()
    # Assert
    assert problems == [VALID, IMPOSSIBLE_DATE, IMPOSSIBLE_DATE, VALID]


def test_opaque_keys_are_checked_for_format_only() -> None:
    # Prepare: upstream pseudonyms, and values that are not pseudonyms at all
    codes = pd.Series(["a1b2c3d4e5f6", "9f86d081884c7d65", "NULL", "-", "has space 12345", "x" * 300, None],
                      dtype="str")
    # Execute
    default = check_identity_codes(codes, "opaque")
    hexadecimal = check_identity_codes(codes, IdentityRule("opaque", pattern="[0-9a-f]{16}"))
    short = check_identity_codes(codes, IdentityRule("opaque", max_length=12))
    # Assert: no birth date or check digit problems can arise, only malformed and missing
    assert default.problem.tolist() == [VALID, VALID, MALFORMED, MALFORMED, MALFORMED, MALFORMED, MISSING]
    assert hexadecimal.problem.tolist() == [MALFORMED, VALID, *[MALFORMED] * 4, MISSING]
    assert short.problem.tolist()[:2] == [VALID, MALFORMED]


def test_a_rule_refuses_settings_of_another_format() -> None:
    with pytest.raises(ValueError, match="opaque keys only"):
        IdentityRule("se", pattern=".*")
    with pytest.raises(ValueError, match="unknown identity format"):
        IdentityRule("de")  # type: ignore[arg-type]


def test_take_expands_checks_to_rows() -> None:
    check = check_identity_codes(pd.Series(["131052-308T", "131052-308U"], dtype="str"))
    rows = check.take(np.array([0, 0, 1, -1]))
    assert rows.problem.tolist() == [VALID, VALID, WRONG_CHECK_CHARACTER, MISSING]


def _births() -> tuple[pd.Series, np.ndarray]:
    """25 residents on each of six birth dates (a leap day included): two municipalities of them stay well
    inside every country's codes per day (Iceland's ~72 is the fewest)."""
    days = ["1925-01-01", "1950-06-01", "1999-12-31", "2000-02-29", "2001-02-28", "2024-12-31"]
    births = pd.Series(pd.to_datetime(days * 25))
    return births, np.tile([True, False, True], 50)


@pytest.mark.parametrize("country", COUNTRIES)
def test_generated_codes_are_valid_unique_and_keep_clear_of_other_municipalities(country: str) -> None:
    # Prepare: a first municipality's codes
    births, male = _births()
    rng = np.random.default_rng(3)
    first = make_identity_codes(births, male, rng, country=country)  # type: ignore[arg-type]
    # Execute
    second = make_identity_codes(births, male, rng, exclude=set(first), country=country)  # type: ignore[arg-type]
    # Assert: valid under their own rule, unique — also in canonical spelling — and new
    for codes in (first, second):
        check, canonical = canonical_identity_codes(pd.Series(codes, dtype="str"), country)  # type: ignore[arg-type]
        assert check.valid.all(), pd.Series(codes)[~check.valid].head().tolist()
        assert canonical.is_unique
    assert not set(first) & set(second)


@pytest.mark.parametrize(("country", "sex_digit"), [("fi", 9), ("se", 10), ("no", 8), ("dk", 10)])
def test_generated_codes_carry_the_sex_where_the_country_encodes_it(country: str, sex_digit: int) -> None:
    births, male = _births()
    codes = make_identity_codes(births, male, np.random.default_rng(5), country=country)  # type: ignore[arg-type]
    odd = np.array([int(c[sex_digit]) % 2 == 1 for c in codes])
    assert (odd == male).all()


def test_generated_finnish_codes_use_every_century_sign_family() -> None:
    rng = np.random.default_rng(3)
    births = pd.Series(pd.to_datetime(["1899-12-31", "1950-06-01", "2001-02-28"] * 400))
    codes = make_identity_codes(births, np.tile([True, False, True], 400), rng)
    assert all(c[6] == "+" for c in codes[0::3])
    assert all(c[6] in "-YXWVU" for c in codes[1::3])
    assert all(c[6] in "ABCDEF" for c in codes[2::3])


def test_generated_swedish_and_norwegian_codes_include_coordination_numbers() -> None:
    # Prepare: 3,000 residents born over a thousand days of 1980 (1 % get a coordination number)
    births = pd.Series(pd.Timestamp("1980-01-01") + pd.to_timedelta(np.arange(3000) % 1000, unit="D"))
    male = np.arange(3000) % 2 == 0
    # Execute
    swedish = make_identity_codes(births, male, np.random.default_rng(8), country="se")
    norwegian = make_identity_codes(births, male, np.random.default_rng(8), country="no")
    # Assert: samordningsnummer (day + 60) and D-nummer (day + 40), all valid
    assert 0 < sum(int(c[6:8]) > 60 for c in swedish) < 100 and 0 < sum(int(c[:2]) > 40 for c in norwegian) < 100
    assert check_identity_codes(pd.Series(swedish, dtype="str"), "se").valid.all()
    assert check_identity_codes(pd.Series(norwegian, dtype="str"), "no").valid.all()


def test_more_residents_on_one_birth_date_than_codes_exist_is_one_usage_error() -> None:
    births = pd.Series(pd.to_datetime(["1990-03-01"] * 200))
    with pytest.raises(UsageError, match="unique is identity code .at most about 70 per day"):
        make_identity_codes(births, np.zeros(200, dtype=bool), np.random.default_rng(1), country="is")
