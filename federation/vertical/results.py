"""The outputs of a cross-sector count study: tables, measures with intervals, rankings — from noisy releases only."""

from __future__ import annotations

from typing import Any

from federation.privacy import CrossSectorPlan
from federation.spec import CrossSectorSpec
from federation.vertical.analysis import Noisy, factor_table, pair_kind, pair_table, rank_factors, rank_pairs, screen_pairs
from federation.vertical.run import Released

__all__ = ["choose_pairs", "cross_sector_outputs", "factor_tables"]

RANKING = ("factors are ranked by |z| = |log odds ratio| / its standard error, the error including both the "
           "sampling variation and the differential-privacy noise: a rare factor whose odds ratio the noise makes "
           "swing falls back instead of crowding the top")
PAIR_RULE = ("the analyst's listed pairs first, then every pair among the {top} factors ranked strongest in the first "
             "stage (within and across sectors), by the sum of their ranks, at most {cap}; pairs are ranked by |z| of "
             "the log ratio of odds ratios (interaction)")


def factor_tables(released: Released) -> dict[str, dict[str, Any]]:
    n, cases = Noisy(*released.cohort_size), Noisy(*released.cases)
    return {name: factor_table(n, cases, Noisy(*released.exposed[name]), Noisy(*released.exposed_cases[name]))
            for name in released.exposed}


def choose_pairs(cross: CrossSectorSpec, plan: CrossSectorPlan, released: Released) -> list[tuple[str, str]]:
    """The pairs of stage 2 — post-processing of stage 1's releases only (costs nothing)."""
    ranking = rank_factors(factor_tables(released), len(released.exposed))
    listed = [(a, b) for a, b in cross.pairs.listed]
    return screen_pairs(ranking, listed, cross.pairs.screen_top, plan.max_pairs, plan.holder)


def cross_sector_outputs(cross: CrossSectorSpec, plan: CrossSectorPlan, released: Released) -> dict[str, Any]:
    if plan.states:
        return _transition_outputs(cross, plan, released)
    tables = factor_tables(released)
    holder = plan.holder
    ranked = rank_factors(tables, len(tables))
    for row in ranked:
        row["dataset"] = holder[str(row["factor"])]
    n, cases = Noisy(*released.cohort_size), Noisy(*released.cases)
    pairs: dict[tuple[str, str] | str, dict[str, Any]] = {}
    for (a, b), both in released.both.items():
        table = pair_table(n, cases, (Noisy(*released.exposed[a]), Noisy(*released.exposed_cases[a])),
                           (Noisy(*released.exposed[b]), Noisy(*released.exposed_cases[b])),
                           Noisy(*both), Noisy(*released.both_cases[(a, b)]))
        pairs[(a, b)] = {**table, "kind": pair_kind(a, b, holder), "datasets": [holder[a], holder[b]]}
    adjusted = _adjusted(cross, ranked, released)
    return {
        "kind": "cross_sector_counts",
        "adjusted_model": adjusted,
        "cohort": {"dataset": cross.cohort.dataset, "ages": [cross.cohort.min_age, cross.cohort.max_age],
                   "reference_date": cross.cohort.reference_date.isoformat(), "size": released.cohort_size[0],
                   "size_noise_sd": released.cohort_size[1]},
        "outcome": {"dataset": cross.outcome.dataset, "cases": released.cases[0], "cases_noise_sd": released.cases[1],
                    "definition": f"a cohort member with a row in {cross.outcome.dataset}'s extract"},
        "factors": {str(row["factor"]): row for row in ranked},
        "ranking": [str(row["factor"]) for row in ranked],
        "ranking_statistic": RANKING,
        "pairs": [{**row, "pair": list(row["pair"])} for row in rank_pairs(pairs, len(pairs))],
        "pair_rule": PAIR_RULE.format(top=cross.pairs.screen_top, cap=plan.max_pairs),
        "released_counts": {"cohort_size": 1, "cases": 1, "exposed": len(released.exposed),
                            "exposed_cases": len(released.exposed_cases), "pair_both": len(released.both),
                            "pair_both_cases": len(released.both_cases)},
        "per_resident_scores": "none: no per-resident value, score or residual exists outside the node that holds it",
        "linkage": {"method": "HMAC-SHA256 pseudonyms under a key drawn for this study; list and key destroyed "
                              "at the end", "digests": released.digests},
        "bytes_moved": released.bytes_moved,
    }


def _adjusted(cross: CrossSectorSpec, ranked: list[dict[str, Any]], released: Released) -> dict[str, Any] | None:
    """The screened factors adjusted for each other (:mod:`federation.vertical.model`): the largest top set of
    the ranking whose every pair was released (all of the screen's, unless listed pairs took the cap)."""
    from federation.vertical.model import adjusted_model, statistics_from

    order = [str(row["factor"]) for row in ranked]
    for size in range(cross.pairs.screen_top, 1, -1):
        stats = statistics_from(released, order[:size])
        if stats is not None:
            return {**adjusted_model(stats), "screen": f"the {size} factors ranked strongest in stage 1, every pair "
                                                       "among them released"}
    return None


def _transition_outputs(cross: CrossSectorSpec, plan: CrossSectorPlan, released: Released) -> dict[str, Any]:
    """Moves between states per the other sector's service status: the matrices of clients (encrypted counts) and
    of everyone else (the node's total moves minus the clients'), with intervals that include both noises."""
    import numpy as np

    from federation.projection import matrix_intervals, ordinal_shrinkage_intervals, project

    dataset, states = next(iter(plan.states.items()))
    k = len(states)
    names = plan.factors[dataset]
    total = np.array([released.exposed[c][0] for c in names]).reshape(k, k)
    clients = np.array([released.exposed_cases[c][0] for c in names]).reshape(k, k)
    sd_total, sd_clients = released.exposed[names[0]][1], released.exposed_cases[names[0]][1]
    served = f"{cross.outcome.dataset} " + (f"{cross.outcome.column}" if cross.outcome.column else "client")
    groups = {served: (clients, sd_clients), "everyone else": (total - clients, float(np.hypot(sd_total, sd_clients)))}
    intervals = {g: ordinal_shrinkage_intervals(c, sd) for g, (c, sd) in groups.items()}
    raw = {g: matrix_intervals(c, sd) for g, (c, sd) in groups.items()}
    return {
        "kind": "cross_sector_transitions",
        "states": list(states),
        "by": {"dataset": cross.outcome.dataset, "column": cross.outcome.column,
               "groups": list(groups), "how": "linked without pooling: the service status never leaves its silo; "
                                             "the health node adds its moves under encryption"},
        "cohort": {"dataset": cross.cohort.dataset, "size": released.cohort_size[0],
                   "size_noise_sd": released.cohort_size[1]},
        "estimator": "empirical Bayes: each row mixes its own noisy counts with the moves up and down the states "
                     "pooled over all rows, weighted by how much data the row has against the noise",
        "transition_matrices": {g: found["probabilities"] for g, found in intervals.items()},
        "transition_intervals": intervals,
        "unsmoothed_matrices": {g: found["probabilities"] for g, found in raw.items()},
        "noise_sd_per_cell": {g: sd for g, (_, sd) in groups.items()},
        "projection": project({g: c for g, (c, _) in groups.items()}, max(sd for _, sd in groups.values()),
                              10, None, None),
        "per_resident_scores": "none: no per-resident value, score or residual exists outside the node that holds it",
        "linkage": {"method": "HMAC-SHA256 pseudonyms under a key drawn for this study; list and key destroyed "
                              "at the end", "digests": released.digests},
        "bytes_moved": released.bytes_moved,
    }
