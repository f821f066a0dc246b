"""Risk-factor tables from noisy released counts: 2×2 and 2×2×2 tables, intervals, rankings, pair screening.

Everything here is post-processing of differentially private releases — it sees only the released
counts and the standard deviation of the noise on each, never a row — so it costs no privacy.

Released counts (each ``Noisy(value, sd)``, noises independent): ``n``, ``cases`` = Σy, per factor
``exposed`` = Σx, ``exposed_cases`` = Σx·y, per pair ``both`` = Σxa·xb, ``both_cases`` = Σxa·xb·y.
The cells of a table are a fixed linear map ``cells = M · released`` (inclusion–exclusion), e.g.
unexposed non-cases = n − exposed − cases + exposed_cases. Because cells share released counts, their
noises are correlated, so the noise is propagated through ``M``, not cell by cell.

For each measure θ (a log odds ratio, a log risk ratio, or RERI) with gradient g with respect to the
cells (evaluated at the cells floored at 0.5):

    var θ = Σ_cells g_c² · cell_c            (sampling: Poisson delta method)
          + Σ_released (Mᵀg)_k² · sd_k²      (DP noise: delta method through the linear map)

For log OR the sampling term is Woolf's Σ 1/cell, for log RR Katz's 1/a − 1/(a+b) + 1/c − 1/(c+d),
for log ROR = log OR₁₁ − log OR₁₀ − log OR₀₁ the sum of 1/cell over all eight cells, and for
RERI = RR₁₁ − RR₁₀ − RR₀₁ + 1 the usual (Hosmer–Lemeshow) delta-method variance. Ratios get 95 %
intervals on the log scale, exp(θ ± 1.96·se); RERI on its own scale. The delta method assumes θ is
close to linear over the spread of the noise, i.e. that every cell is large against its noise sd
and its sampling error; for cells of a few dozen under noise sd ≈ 100 the intervals are rough and
``noise_share`` says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from federation.projection import Z95

__all__ = ["Noisy", "factor_table", "pair_kind", "pair_table", "rank_factors", "rank_pairs", "recall",
           "screen_pairs"]

#: floor of a cell in the ratio measures: noisy cells can be zero or negative, where a log is undefined
CELL_FLOOR = 0.5
#: log-scale bounds are clipped here: e^710 overflows a float, and JSON has no infinity
_LOG_LIMIT = 700.0

# Released-count order of a factor: n, cases, exposed, exposed_cases.
# Cell order: stratum 0 (unexposed) cases, non-cases, stratum 1 (exposed) cases, non-cases.
_FACTOR_MAP = np.array([[0, 1, 0, -1],
                        [1, -1, -1, 1],
                        [0, 0, 0, 1],
                        [0, 0, 1, -1]], dtype=float)

# Released-count order of a pair: n, cases, a.exposed, a.exposed_cases, b.exposed, b.exposed_cases, both,
# both_cases. Strata 00, 10, 01, 11 (a then b), each as cases, non-cases.
_STRATA = ("00", "10", "01", "11")
_PAIR_MAP = np.array([[0, 1, 0, -1, 0, -1, 0, 1],
                      [1, -1, -1, 1, -1, 1, 1, -1],
                      [0, 0, 0, 1, 0, 0, 0, -1],
                      [0, 0, 1, -1, 0, 0, -1, 1],
                      [0, 0, 0, 0, 0, 1, 0, -1],
                      [0, 0, 0, 0, 1, -1, -1, 1],
                      [0, 0, 0, 0, 0, 0, 0, 1],
                      [0, 0, 0, 0, 0, 0, 1, -1]], dtype=float)


@dataclass(frozen=True)
class Noisy:
    """A released count and the standard deviation of the noise on it (0 only in a noiseless test run)."""

    value: float
    sd: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.value) and math.isfinite(self.sd)) or self.sd < 0:
            raise ValueError(f"a released count needs a finite value and a finite sd ≥ 0, got {self!r}")


class _Cells:
    """A stratified table's cells as a linear map of the released counts.

    Cells are kept raw (they are what the release says, negatives included) and floored at
    ``CELL_FLOOR`` for the ratio measures, whose logs and quotients need positive cells.
    """

    def __init__(self, released: list[Noisy], design: np.ndarray) -> None:
        self.design = design
        self.raw: np.ndarray = design @ np.array([r.value for r in released], dtype=float)
        self.used: np.ndarray = np.maximum(self.raw, CELL_FLOOR)
        self.noise_var: np.ndarray = np.array([r.sd for r in released], dtype=float) ** 2

    def risk(self, stratum: int) -> float:
        cases, noncases = self.used[2 * stratum], self.used[2 * stratum + 1]
        return float(cases / (cases + noncases))

    def log_odds(self, stratum: int) -> tuple[float, np.ndarray]:
        """log(cases/non-cases) of one stratum and its gradient over the cells."""
        cases, noncases = self.used[2 * stratum], self.used[2 * stratum + 1]
        gradient = np.zeros_like(self.used)
        gradient[2 * stratum], gradient[2 * stratum + 1] = 1 / cases, -1 / noncases
        return float(np.log(cases / noncases)), gradient

    def log_risk(self, stratum: int) -> tuple[float, np.ndarray]:
        """log(cases/count) of one stratum and its gradient over the cells."""
        cases, noncases = self.used[2 * stratum], self.used[2 * stratum + 1]
        gradient = np.zeros_like(self.used)
        gradient[2 * stratum], gradient[2 * stratum + 1] = 1 / cases - 1 / (cases + noncases), -1 / (cases + noncases)
        return float(np.log(cases / (cases + noncases))), gradient

    def interval(self, estimate: float, gradient: np.ndarray, log_scale: bool) -> dict[str, Any]:
        """95 % interval of a measure from the sampling and the DP-noise parts of its delta-method variance."""
        sampling = float(np.sum(gradient**2 * self.used))
        noise = float(np.sum((gradient @ self.design) ** 2 * self.noise_var))
        se = math.sqrt(sampling + noise)
        low, high = estimate - Z95 * se, estimate + Z95 * se
        if log_scale:   # a bound past e^±700 (a cell at the floor under heavy noise) is kept finite for JSON
            estimate, low, high = (math.exp(min(max(v, -_LOG_LIMIT), _LOG_LIMIT)) for v in (estimate, low, high))
        return {"estimate": estimate, "lower": low, "upper": high, "se": se,
                "scale": "log" if log_scale else "linear", "sampling_variance": sampling, "noise_variance": noise,
                "noise_share": noise / (sampling + noise)}


def _difference(first: tuple[float, np.ndarray], second: tuple[float, np.ndarray]) -> tuple[float, np.ndarray]:
    return first[0] - second[0], first[1] - second[1]


def factor_table(n: Noisy, cases: Noisy, exposed: Noisy, exposed_cases: Noisy) -> dict[str, Any]:
    """The 2×2 table of one factor against the outcome, its risks, RR and OR with 95 % intervals.

    ``cells`` are the raw post-processed cells (they can be negative: the release is noisy); risks and
    ratios use ``cells_used``, each cell floored at 0.5, because a log of a zero or negative cell is
    undefined and the floor is the usual continuity correction. ``z`` = log OR / se(log OR) with the DP
    noise in the variance is the ranking statistic (see ``rank_factors``); ``noise_share`` is the part of
    var(log OR) that the privacy noise costs.
    """
    table = _Cells([n, cases, exposed, exposed_cases], _FACTOR_MAP)
    log_or = _difference(table.log_odds(1), table.log_odds(0))
    log_rr = _difference(table.log_risk(1), table.log_risk(0))
    odds_ratio = table.interval(*log_or, log_scale=True)
    names = ("unexposed_cases", "unexposed_noncases", "exposed_cases", "exposed_noncases")
    return {
        "cells": {name: float(v) for name, v in zip(names, table.raw)},
        "cells_used": {name: float(v) for name, v in zip(names, table.used)},
        "prevalence": min(max(exposed.value / n.value, 0.0), 1.0) if n.value > 0 else 0.0,
        "risk_exposed": table.risk(1),
        "risk_unexposed": table.risk(0),
        "risk_ratio": table.interval(*log_rr, log_scale=True),
        "odds_ratio": odds_ratio,
        "se_log_or": odds_ratio["se"],
        "z": log_or[0] / odds_ratio["se"],
        "noise_share": odds_ratio["noise_share"],
    }


def pair_table(n: Noisy, cases: Noisy, a: tuple[Noisy, Noisy], b: tuple[Noisy, Noisy], both: Noisy,
               both_cases: Noisy) -> dict[str, Any]:
    """The 2×2×2 table of two factors against the outcome: joint effect and interaction on both scales.

    ``a`` and ``b`` are each ``(exposed, exposed_cases)``. Strata are named by exposure to a then b
    (``"10"``: a only). Odds and risk ratios compare each stratum with ``"00"``. The ratio of odds
    ratios ROR = OR₁₁/(OR₁₀·OR₀₁) measures departure from multiplicative joint effects, RERI =
    RR₁₁ − RR₁₀ − RR₀₁ + 1 departure from additive ones; ``z`` = log ROR / se is the ranking statistic.
    Cells are floored at 0.5 for the ratios as in ``factor_table``; ``strata`` keeps the raw counts.
    """
    table = _Cells([n, cases, a[0], a[1], b[0], b[1], both, both_cases], _PAIR_MAP)
    log_or = {s: _difference(table.log_odds(i), table.log_odds(0)) for i, s in enumerate(_STRATA) if i}
    log_rr = {s: _difference(table.log_risk(i), table.log_risk(0)) for i, s in enumerate(_STRATA) if i}
    log_ror = (log_or["11"][0] - log_or["10"][0] - log_or["01"][0], log_or["11"][1] - log_or["10"][1] - log_or["01"][1])
    rr = {s: (math.exp(v), math.exp(v) * g) for s, (v, g) in log_rr.items()}
    reri = (rr["11"][0] - rr["10"][0] - rr["01"][0] + 1, rr["11"][1] - rr["10"][1] - rr["01"][1])
    odds_ratios = {s: table.interval(*m, log_scale=True) for s, m in log_or.items()}
    ror = table.interval(*log_ror, log_scale=True)
    return {
        "strata": {s: {"count": float(table.raw[2 * i] + table.raw[2 * i + 1]), "cases": float(table.raw[2 * i]),
                       "risk": table.risk(i)} for i, s in enumerate(_STRATA)},
        "odds_ratios": odds_ratios,
        "risk_ratios": {s: table.interval(*m, log_scale=True) for s, m in log_rr.items()},
        "joint_odds_ratio": odds_ratios["11"],
        "ratio_of_odds_ratios": ror,
        "reri": table.interval(*reri, log_scale=False),
        "se_log_ror": ror["se"],
        "z": log_ror[0] / ror["se"],
        "noise_share": ror["noise_share"],
    }


def _ranked(tables: dict[Any, dict[str, Any]], top: int, label: str) -> list[dict[str, Any]]:
    def order(key: Any) -> tuple[float, tuple[str, ...]]:
        return -abs(float(tables[key]["z"])), tuple(key) if isinstance(key, tuple) else (key,)

    chosen = sorted(tables, key=order)[:max(top, 0)]
    return [{"rank": i + 1, label: list(key) if isinstance(key, tuple) else key, **tables[key]}
            for i, key in enumerate(chosen)]


def rank_factors(tables: dict[str, dict[str, Any]], top: int) -> list[dict[str, Any]]:
    """The ``top`` factors by |z| = |log OR| / se(log OR), ties by name; each row is its table plus rank.

    Why |z| and not |log OR|: under the DP noise a rare factor's exposed cases (a few dozen) can come out
    near zero or double, so its noisy OR swings wildly and crowds the top of a ranking by OR. The
    z-statistic divides by a standard error that includes the noise, so such factors fall back. The
    design document measured about 9 of the exact top 10 kept by z against 1–3 by the raw OR at noise
    sd ≈ 90–100; on cohorts like the synthetic municipality's (62,000 children, 280 factors, 30 main
    effects, sd 100) our simulation keeps 6–7 by z on average (3–9 in single cohorts) against 0–1 by
    the raw OR (tests/unit/test_vertical_analysis.py). Rare factors are genuinely uncertain under the
    noise; no ranking of the noisy release recovers all of the exact one.
    """
    return _ranked(tables, top, "factor")


def rank_pairs(tables: dict[tuple[str, str] | str, dict[str, Any]], top: int) -> list[dict[str, Any]]:
    """The ``top`` pairs by |z| of log ROR (interaction beyond noise and sampling), ties by name, with rank.

    The same reason as ``rank_factors``: the estimated ROR of a thin 11 stratum is mostly noise, and
    only the z-statistic discounts it. A tuple key is reported as a list under ``pair``.
    """
    return _ranked(tables, top, "pair")


def pair_kind(a: str, b: str, holder: dict[str, str]) -> str:
    """``"within"`` if one dataset holds both factors, else ``"across"`` (a KeyError for an unheld factor)."""
    return "within" if holder[a] == holder[b] else "across"


def screen_pairs(ranked_factors: list[dict[str, Any]], listed: list[tuple[str, str]], screen_top: int,
                 max_pairs: int, holder: dict[str, str]) -> list[tuple[str, str]]:
    """Pairs to release, at most ``max_pairs`` in all (each pair release spends privacy budget).

    First the analyst's ``listed`` pairs in their order, then every pair among the ``screen_top``
    strongest factors of ``ranked_factors`` (the output of ``rank_factors``; pass the full ranking so
    listed pairs of weaker factors stay known), ordered by the sum of the two ranks, then the better
    rank, then the names — within and across sectors alike (report the kind with ``pair_kind``). Pairs
    are sorted tuples, repeats and self-pairs are dropped, and so are names that are not in the ranking
    or that ``holder`` does not place in a dataset (no dataset can release them).
    """
    rank = {str(row["factor"]): int(row["rank"]) for row in ranked_factors if str(row["factor"]) in holder}
    chosen: list[tuple[str, str]] = []

    def add(first: str, second: str) -> None:
        pair = (min(first, second), max(first, second))
        if first != second and first in rank and second in rank and pair not in chosen:
            chosen.append(pair)

    strongest = sorted(rank, key=lambda f: (rank[f], f))[:max(screen_top, 0)]
    screened = sorted(combinations(strongest, 2),
                      key=lambda p: (rank[p[0]] + rank[p[1]], min(rank[p[0]], rank[p[1]]), sorted(p)))
    for first, second in [*listed, *screened]:
        if len(chosen) >= max_pairs:
            break
        add(first, second)
    return chosen


def recall(found: list[str], truth: list[str]) -> float:
    """Share of ``truth`` that ``found`` contains (e.g. of the exact top 10, how many a noisy top 10 keeps)."""
    wanted = set(truth)
    if not wanted:
        raise ValueError("recall of an empty truth is undefined")
    return len(wanted & set(found)) / len(wanted)
