"""Sector data contracts: what an extract must look like, and how private each column is.

A contract is a YAML or JSON file. It is parsed once, here, into frozen value objects; the
validation suite, the synthetic generator and the contract documentation are all derived from it,
so a column exists in exactly one place. A team adds a dataset of its own by writing a file — no
code changes.

A column entry may carry ``count: N`` with a ``{i}`` field in its name (``ss_rf_{i:03d}``) to
declare a family of like columns, such as a block of risk-factor indicators.

The identifier column (``type: identity_code``) says which resident key it holds with ``format``: ``fi``
(the default: Finnish henkilötunnus), ``se``, ``no``, ``dk``, ``is`` (the other Nordic identity codes, each
with its own check rule, :mod:`schemas.identity`) or ``opaque`` (a key pseudonymised upstream, checked
against ``pattern`` and ``max_length`` only). A team's file may stand in for a built-in contract of the same
name only when it says ``replaces_builtin: true`` (a Swedish deployment of the built-in sectors, say).
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cached_property
from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas.identity import IdentityFormat, IdentityRule

__all__ = [
    "Bound",
    "Column",
    "ColumnType",
    "Contract",
    "PrivacyClass",
    "Severity",
    "parse_contract",
]

ColumnType = Literal["identity_code", "integer", "number", "boolean", "category", "string", "date"]
PrivacyClass = Literal["direct_identifier", "quasi_identifier", "sensitive", "public"]
Severity = Literal["block", "warn"]
Bound = Union[int, float, dt.date]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_TEMPLATE = re.compile(r"\{i(:[0-9]*d)?\}")
_NUMERIC = ("integer", "number")


class Column(BaseModel):
    """One column of an extract (after ``count`` templates are expanded)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    type: ColumnType
    privacy: PrivacyClass
    description: str = ""
    nullable: bool = False
    #: hard bounds; for numbers these are also the clipping bounds a DP study may rely on
    range: tuple[Bound, Bound] | None = None
    #: plausible bounds; values outside ``warn_range`` but inside ``range`` only warn
    warn_range: tuple[Bound, Bound] | None = None
    categories: tuple[str, ...] | None = None
    max_length: int | None = Field(default=None, ge=1)
    #: identity_code only: which resident key the column holds (default ``fi``), see :mod:`schemas.identity`
    format: IdentityFormat | None = None
    #: an ``opaque`` key only: a regular expression every key must match in full
    pattern: str | None = Field(default=None, min_length=1, max_length=1000)
    #: warn when the share of nulls exceeds this (only for nullable columns)
    max_null_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    #: whether a range or category violation blocks computation or only warns
    on_violation: Severity = "block"
    count: int | None = Field(default=None, ge=1, le=10_000)

    @model_validator(mode="after")
    def _consistent(self) -> Column:
        if self.count is None and not _NAME.match(self.name):
            raise ValueError(f"column name {self.name!r} must match {_NAME.pattern}")
        if self.count is not None and not _TEMPLATE.search(self.name):
            raise ValueError(f"column {self.name!r} has count but no {{i}} field in its name")
        if self.type == "category" and not self.categories:
            raise ValueError(f"category column {self.name!r} needs non-empty categories")
        if self.categories is not None and self.type != "category":
            raise ValueError(f"column {self.name!r}: categories only apply to type category")
        if self.categories is not None and len(set(self.categories)) != len(self.categories):
            raise ValueError(f"column {self.name!r}: categories repeat")
        for label, bounds in (("range", self.range), ("warn_range", self.warn_range)):
            if bounds is not None:
                self._check_bounds(label, bounds)
        if self.warn_range is not None:
            if self.range is None:
                raise ValueError(f"column {self.name!r}: warn_range needs a range")
            if not (_le(self.range[0], self.warn_range[0]) and _le(self.warn_range[1], self.range[1])):
                raise ValueError(f"column {self.name!r}: warn_range must lie inside range")
        if self.max_null_rate is not None and not self.nullable:
            raise ValueError(f"column {self.name!r}: max_null_rate needs nullable: true")
        if self.max_length is not None and self.type not in ("string", "category") and self.format != "opaque":
            raise ValueError(f"column {self.name!r}: max_length only applies to strings and opaque keys")
        self._check_identity_format()
        if self.type == "identity_code" and self.privacy != "direct_identifier":
            raise ValueError(f"identity_code column {self.name!r} must be a direct_identifier")
        return self

    def _check_identity_format(self) -> None:
        if self.format is not None and self.type != "identity_code":
            raise ValueError(f"column {self.name!r}: format only applies to identity_code columns")
        if self.pattern is not None:
            if self.format != "opaque":
                raise ValueError(f"column {self.name!r}: pattern only applies to format: opaque")
            try:
                re.compile(self.pattern)
            except re.error as error:
                raise ValueError(f"column {self.name!r}: pattern is not a regular expression ({error.msg})") from None

    @property
    def identity_rule(self) -> IdentityRule:
        """How this identity_code column's keys are checked (Finnish codes unless ``format`` says otherwise)."""
        if self.type != "identity_code":
            raise ValueError(f"column {self.name!r} holds no identity codes")
        opaque = self.format == "opaque"
        return IdentityRule(self.format or "fi", self.pattern, self.max_length if opaque else None)

    def _check_bounds(self, label: str, bounds: tuple[Bound, Bound]) -> None:
        if self.type not in (*_NUMERIC, "date"):
            raise ValueError(f"column {self.name!r}: {label} only applies to numbers and dates")
        wanted: tuple[type, ...] = (dt.date,) if self.type == "date" else (int, float)
        if self.type == "integer":
            wanted = (int,)
        for bound in bounds:
            if isinstance(bound, bool) or not isinstance(bound, wanted):
                raise ValueError(f"column {self.name!r}: {label} bounds must be {self.type} values")
        if not _le(bounds[0], bounds[1]):
            raise ValueError(f"column {self.name!r}: {label} lower bound exceeds upper bound")

    def expand(self) -> list[Column]:
        """The concrete columns this entry declares (itself, or ``count`` numbered copies)."""
        if self.count is None:
            return [self]
        return [
            self.model_copy(update={"name": self.name.format(i=i), "count": None})
            for i in range(1, self.count + 1)
        ]


def _le(a: Bound, b: Bound) -> bool:
    return bool(a <= b)  # type: ignore[operator]


class Contract(BaseModel):
    """A versioned sector data contract with its privacy unit and contribution bound."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal[1] = 1
    name: str
    version: str
    title: str
    description: str = ""
    sector: str
    privacy_unit: Literal["resident"] = "resident"
    #: the column holding the personal identity code; pseudonymised on the node before anything else
    identifier: str
    #: how many rows one resident may contribute (the DP contribution bound)
    max_rows_per_resident: int = Field(ge=1)
    key: tuple[str, ...]
    min_rows: int = Field(default=1, ge=0)
    extra_columns: Severity = "block"
    columns: tuple[Column, ...]
    #: a team's file that stands in for the built-in contract of the same name (checked by the catalog)
    replaces_builtin: bool = False

    @field_validator("name", "sector")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} must match {_NAME.pattern}")
        return value

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str) -> str:
        if not re.match(r"^\d+\.\d+\.\d+$", value):
            raise ValueError(f"version {value!r} must be MAJOR.MINOR.PATCH")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Contract:
        names = [column.name for column in self.expanded_columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"columns repeat: {', '.join(duplicates)}")
        by_name = {column.name: column for column in self.expanded_columns}
        ident = by_name.get(self.identifier)
        if ident is None or ident.type != "identity_code":
            raise ValueError(f"identifier {self.identifier!r} must name an identity_code column")
        others = [c.name for c in self.expanded_columns if c.type == "identity_code" and c.name != self.identifier]
        if others:
            raise ValueError(f"only the identifier may be an identity_code column: {', '.join(others)}")
        missing = [k for k in self.key if k not in by_name]
        if missing:
            raise ValueError(f"key names unknown columns: {', '.join(missing)}")
        if self.identifier not in self.key:
            raise ValueError("key must include the identifier")
        if self.max_rows_per_resident == 1 and tuple(self.key) != (self.identifier,):
            raise ValueError("with max_rows_per_resident 1 the key is the identifier alone")
        return self

    @cached_property
    def expanded_columns(self) -> tuple[Column, ...]:
        """Every concrete column in declaration order."""
        return tuple(c for entry in self.columns for c in entry.expand())

    @cached_property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.expanded_columns)

    def column(self, name: str) -> Column:
        for column in self.expanded_columns:
            if column.name == name:
                return column
        raise KeyError(name)

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def identity_rule(self) -> IdentityRule:
        """How the identifier's resident keys are checked."""
        return self.column(self.identifier).identity_rule


def parse_contract(document: object, source: str) -> Contract:
    """Parse a loaded YAML/JSON document; every problem becomes one readable ``ContractError`` line."""
    from common.errors import ContractError, describe_validation_error

    if not isinstance(document, dict):
        raise ContractError(f"contract {source}: expected a mapping at the top level")
    try:
        return Contract.model_validate(document)
    except ValidationError as error:
        raise ContractError(f"contract {source}: {describe_validation_error(error)}") from None
