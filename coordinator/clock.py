"""One clock for the coordinator: ISO-8601 UTC, second precision plus microseconds, sortable as text."""

from __future__ import annotations

import datetime as dt

__all__ = ["now"]


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")
