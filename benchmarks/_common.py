"""Shared helpers for benchmarks: timing with medians and a printed results table."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(run: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def row(label: str, seconds: float, baseline: float | None = None) -> str:
    ratio = f"{seconds / baseline:6.2f}x" if baseline else "   base"
    return f"  {label:<52} {seconds:8.3f} s  {ratio}"
