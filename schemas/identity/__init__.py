"""Resident keys: the Nordic personal identity codes, each with its own check rule, and opaque upstream pseudonyms.

Checking real codes lives here (the generator makes synthetic ones). A check reports per value what is wrong
— missing, malformed, an impossible birth date, a wrong check digit — as a small integer, never the value;
:func:`canonical_identity_codes` also gives the one spelling of each valid code that the node hashes.
"""

from schemas.identity._base import (
    IMPOSSIBLE_DATE, MALFORMED, MISSING, VALID, WRONG_CHECK_CHARACTER, IdentityCheck, Parsed,
)
from schemas.identity._nordic import CHECK_CHARACTERS
from schemas.identity._rules import (
    FINNISH, FORMAT_LABELS, IDENTITY_FORMATS, OPAQUE_DEFAULT_PATTERN, OPAQUE_MAX_LENGTH, IdentityFormat, IdentityRule,
    canonical_identity_codes, check_identity_codes, parse_identity_codes,
)

__all__ = [
    "CHECK_CHARACTERS",
    "FINNISH",
    "FORMAT_LABELS",
    "IDENTITY_FORMATS",
    "IMPOSSIBLE_DATE",
    "MALFORMED",
    "MISSING",
    "OPAQUE_DEFAULT_PATTERN",
    "OPAQUE_MAX_LENGTH",
    "VALID",
    "WRONG_CHECK_CHARACTER",
    "IdentityCheck",
    "IdentityFormat",
    "IdentityRule",
    "Parsed",
    "canonical_identity_codes",
    "check_identity_codes",
    "parse_identity_codes",
]
