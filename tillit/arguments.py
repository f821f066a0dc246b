"""The types of ``tillit``'s options: every value on the command line is checked here, once, at the edge.

Each type returns the parsed value or raises :class:`argparse.ArgumentTypeError`, which argparse turns
into its usage line and exit 2. Messages never repeat what was typed: a value may be huge, binary, or
someone's data. Numbers are finite and of a sane length, text is UTF-8 without NUL, names that become
part of a URL path are one path segment, and paths are UTF-8 (they are printed back to the operator).
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import re
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "COUNTRIES", "MAX_PARAMS_CHARS", "address", "coordinator_url", "country", "database_url", "dataset", "datasets",
    "finite", "host", "hosts", "municipalities", "path", "port", "seed", "segment", "text", "whole",
]

#: the longest number we parse (a float's repr is 24 characters at most)
_MAX_NUMBER_CHARS = 64
#: the longest path we accept (Linux's PATH_MAX)
_MAX_PATH_CHARS = 4096
#: the longest name that becomes one URL path segment (a study id, a period, a municipality)
_MAX_SEGMENT_CHARS = 200
#: the longest ``--params`` we send (JSON inline or in @FILE); a template takes a handful of fields
MAX_PARAMS_CHARS = 64 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOSTNAME = re.compile(r"^(?=.{1,64}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_MUNICIPALITY = re.compile(r"^[a-z0-9_-]{1,48}$")
#: whose identity codes ``tillit synth`` can give (``schemas.synth.COUNTRIES``, spelled here so that parsing a
#: command line does not load numpy; a unit test keeps the two equal)
COUNTRIES = ("fi", "se", "no", "dk", "is")


def _utf8(value: str, what: str) -> None:
    if "\x00" in value:
        raise argparse.ArgumentTypeError(f"{what} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(f"{what} is not valid UTF-8 text") from None


def text(max_chars: int = 10_000, *, what: str = "the value", single_line: bool = False) -> Callable[[str], str]:
    """Free text: UTF-8, no NUL, at most ``max_chars`` characters (and no control characters if ``single_line``)."""

    def parse(value: str) -> str:
        _utf8(value, what)
        if len(value) > max_chars:
            raise argparse.ArgumentTypeError(f"{what} is longer than {max_chars:,} characters")
        if single_line and _CONTROL.search(value):
            raise argparse.ArgumentTypeError(f"{what} contains a control character (a line break, tab, ...)")
        return value

    parse.__name__ = "text"
    return parse


def segment(value: str) -> str:
    """A name that becomes one segment of a URL path: a study id, a period, a municipality."""
    text(_MAX_SEGMENT_CHARS, what="the name", single_line=True)(value)
    if value in ("", ".", "..") or "/" in value:
        raise argparse.ArgumentTypeError("expected a name: not empty, not '.' or '..', and without '/'")
    return value


def dataset(value: str) -> str:
    """``<municipality>/<sector>``, each part a name."""
    municipality, slash, sector = value.partition("/")
    if not slash or not municipality or not sector or "/" in sector:
        raise argparse.ArgumentTypeError("expected <municipality>/<sector>, e.g. espoo/health_care")
    segment(municipality)
    segment(sector)
    return value


def datasets(value: str) -> tuple[str, ...]:
    """Comma-separated datasets (``espoo/health_care,espoo/education``); empty means none."""
    text(_MAX_SEGMENT_CHARS * 50, what="the list")(value)
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    for name in names:
        dataset(name)
    return names


def municipalities(value: str) -> tuple[str, ...]:
    names = tuple(n.strip().lower() for n in value.split(",") if n.strip())
    if not names or len(value) > 2_000 or any(not _MUNICIPALITY.match(n) for n in names):
        raise argparse.ArgumentTypeError("expected comma-separated municipality names of a-z, 0-9, '_' and '-' "
                                         "(at most 48 characters each), e.g. espoo,vantaa")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError("a municipality is named twice")
    return names


def country(value: str) -> str:
    """A Nordic country's code as ``tillit synth --country`` takes it (lower case)."""
    code = value.strip().lower()
    if code not in COUNTRIES:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(COUNTRIES)} (Finland, Sweden, Norway, Denmark, "
                                         "Iceland)")
    return code


def whole(low: int, high: int, *, what: str = "a whole number") -> Callable[[str], int]:
    """An integer in ``[low, high]`` (``_`` as a digit separator is fine)."""

    def parse(value: str) -> int:
        if len(value) > _MAX_NUMBER_CHARS:
            raise argparse.ArgumentTypeError(f"expected {what}, got {len(value):,} characters")
        try:
            number = int(value.replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:,} and {high:,}")
        return number

    parse.__name__ = "whole"
    return parse


def finite(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Callable[[str], float]:
    """A finite number in the range (NaN and infinities are refused: they would pass any comparison)."""

    def parse(value: str) -> float:
        if len(value) > _MAX_NUMBER_CHARS:
            raise argparse.ArgumentTypeError(f"expected a number, got {len(value):,} characters")
        try:
            number = float(value.replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError("expected a number") from None
        if not math.isfinite(number):
            raise argparse.ArgumentTypeError("expected a finite number (not NaN or infinity)")
        if number < low or number > high or (low_open and number == low) or (high_open and number == high):
            left, right = "(" if low_open else "[", ")" if high_open else "]"
            raise argparse.ArgumentTypeError(f"must be in {left}{low:g}, {high:g}{right}")
        return number

    parse.__name__ = "finite"
    return parse


port = whole(0, 65_535, what="a TCP port")
seed = whole(0, 2**63 - 1, what="a non-negative whole number")


def path(value: str) -> Path:
    """A file system path: UTF-8 text (we print it back), no NUL, not empty, at most PATH_MAX."""
    _utf8(value, "the path")
    if not value or len(value) > _MAX_PATH_CHARS:
        raise argparse.ArgumentTypeError(f"expected a path of 1 to {_MAX_PATH_CHARS:,} characters")
    return Path(value)


def host(value: str) -> str:
    """An IP address or a DNS name (ASCII, at most 64 characters: it becomes a certificate's common name)."""
    bare = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        ipaddress.ip_address(bare)
        return bare
    except ValueError:
        pass
    if not _HOSTNAME.match(value):
        raise argparse.ArgumentTypeError("expected an IP address or a host name (ASCII letters, digits, '-' and "
                                         "'.', at most 64 characters)")
    return value


def hosts(value: str) -> tuple[str, ...]:
    found = tuple(host(h.strip()) for h in value.split(",") if h.strip())
    if not found or len(found) > 100:
        raise argparse.ArgumentTypeError("expected 1 to 100 comma-separated IP addresses or host names")
    return found


def address(value: str) -> str:
    """``HOST:PORT`` (an IPv6 host in brackets)."""
    name, colon, number = value.rpartition(":")
    if not colon or not number.isdigit() or len(number) > 5 or not 1 <= int(number) <= 65_535:
        raise argparse.ArgumentTypeError("expected HOST:PORT, e.g. 127.0.0.1:9093")
    host(name)
    return value


def coordinator_url(value: str) -> str:
    """An ``http://`` or ``https://`` URL with a host (what ``--coordinator`` and $TILLIT_COORDINATOR_URL take)."""
    import httpx

    _utf8(value, "the URL")
    if len(value) > 2_048 or _CONTROL.search(value) or " " in value:
        raise argparse.ArgumentTypeError("expected a URL such as http://127.0.0.1:8470 (one line, no spaces)")
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise argparse.ArgumentTypeError("expected a URL such as http://127.0.0.1:8470") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise argparse.ArgumentTypeError("expected an http:// or https:// URL with a host, e.g. http://127.0.0.1:8470")
    return value


def database_url(value: str) -> str:
    """A SQLAlchemy URL for SQLite or PostgreSQL."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    text(2_048, what="the database URL", single_line=True)(value)
    try:
        backend = make_url(value).get_backend_name()
    except (ArgumentError, ValueError, TypeError):
        raise argparse.ArgumentTypeError("expected a database URL such as postgresql+psycopg://user@host/tillit") \
            from None
    if backend not in ("sqlite", "postgresql"):
        raise argparse.ArgumentTypeError("the coordinator's database is SQLite or PostgreSQL")
    return value
