"""Which rule a contract's resident key follows, and checking a column of keys by it.

A contract's identifier column says its ``format``: one of the Nordic identity codes (``fi`` — the
default, ``se``, ``no``, ``dk``, ``is``) or ``opaque``, a key already pseudonymised upstream that only has
to look like one (``pattern``, ``max_length``). The node still hashes an opaque key with its own secret.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd

from schemas.identity import _nordic
from schemas.identity._base import IdentityCheck, Parsed, problems

__all__ = [
    "FINNISH",
    "FORMAT_LABELS",
    "IDENTITY_FORMATS",
    "OPAQUE_DEFAULT_PATTERN",
    "OPAQUE_MAX_LENGTH",
    "IdentityFormat",
    "IdentityRule",
    "canonical_identity_codes",
    "check_identity_codes",
    "parse_identity_codes",
]

IdentityFormat = Literal["fi", "se", "no", "dk", "is", "opaque"]
IDENTITY_FORMATS: tuple[IdentityFormat, ...] = get_args(IdentityFormat)

#: what a report and the contract docs call the codes of each format
FORMAT_LABELS: dict[IdentityFormat, str] = {
    "fi": "Finnish personal identity codes (henkilötunnus)",
    "se": "Swedish personal identity or coordination numbers (personnummer, samordningsnummer)",
    "no": "Norwegian national identity numbers (fødselsnummer, D-nummer, H-nummer)",
    "dk": "Danish personal identification numbers (CPR)",
    "is": "Icelandic identity numbers (kennitala)",
    "opaque": "pseudonymous resident keys (checked for format only)",
}

#: an upstream pseudonym, unless the contract gives its own ``pattern``: no whitespace or control characters,
#: and at least 8 characters, so that placeholders such as ``NULL``, ``N/A``, ``-`` or ``0`` are not taken
#: for one resident
OPAQUE_DEFAULT_PATTERN = r"[^\s\x00-\x1f\x7f]{8,}"
OPAQUE_MAX_LENGTH = 256

_NORDIC: dict[str, Callable[[pd.Series, np.ndarray], Parsed]] = {
    "fi": _nordic.finnish, "no": _nordic.norwegian, "dk": _nordic.danish, "is": _nordic.icelandic,
}


@dataclass(frozen=True)
class IdentityRule:
    """How to check a resident key: its format and, for ``opaque``, the pattern and longest length."""

    format: IdentityFormat = "fi"
    pattern: str | None = None
    max_length: int | None = None

    def __post_init__(self) -> None:
        if self.format not in IDENTITY_FORMATS:
            raise ValueError(f"unknown identity format {self.format!r}; known: {', '.join(IDENTITY_FORMATS)}")
        if (self.pattern is not None or self.max_length is not None) and self.format != "opaque":
            raise ValueError("pattern and max_length apply to opaque keys only")

    @property
    def label(self) -> str:
        return FORMAT_LABELS[self.format]


FINNISH = IdentityRule()


def _as_rule(rule: IdentityRule | IdentityFormat) -> IdentityRule:
    return rule if isinstance(rule, IdentityRule) else IdentityRule(rule)


def parse_identity_codes(codes: pd.Series, rule: IdentityRule | IdentityFormat = FINNISH, *,
                         today: dt.date | None = None) -> Parsed:
    """Each code's problem and canonical spelling under ``rule`` (``today`` only matters for Swedish short codes)."""
    rule = _as_rule(rule)
    present = codes.notna().to_numpy(dtype=bool)
    text = codes if codes.dtype == "str" else codes.astype("str")
    text = text.where(present, "")
    if rule.format == "se":
        return _nordic.swedish(text, present, today)
    if rule.format == "opaque":
        return _opaque(text, present, rule)
    return _NORDIC[rule.format](text, present)


def check_identity_codes(codes: pd.Series, rule: IdentityRule | IdentityFormat = FINNISH) -> IdentityCheck:
    """Check every code's format (and, for the Nordic codes, birth date and check digit), vectorised."""
    return IdentityCheck(parse_identity_codes(codes, rule).problem)


def canonical_identity_codes(codes: pd.Series, rule: IdentityRule | IdentityFormat = FINNISH,
                             ) -> tuple[IdentityCheck, pd.Series]:
    """The check, and each valid code in the one spelling that is hashed (null where missing or invalid)."""
    parsed = parse_identity_codes(codes, rule)
    return IdentityCheck(parsed.problem), pd.Series(parsed.canonical, index=codes.index, dtype="str")


def _opaque(text: pd.Series, present: np.ndarray, rule: IdentityRule) -> Parsed:
    pattern = rule.pattern if rule.pattern is not None else OPAQUE_DEFAULT_PATTERN
    longest = rule.max_length if rule.max_length is not None else OPAQUE_MAX_LENGTH
    well_formed = text.str.fullmatch(re.compile(pattern)).fillna(False).to_numpy(dtype=bool) & present
    well_formed &= text.str.len().to_numpy() <= longest
    problem = problems(present, well_formed, well_formed, well_formed)
    return Parsed.of(problem, text.to_numpy(dtype=object))
