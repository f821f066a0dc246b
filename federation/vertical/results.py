"""The outputs of a cross-sector count study: tables, measures with intervals, rankings — from noisy releases only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from federation.privacy import ContractSource, CrossSectorPlan
from federation.spec import CrossSectorSpec, StudySpec
from federation.vertical.analysis import Noisy, factor_table, pair_kind, pair_table, rank_factors, rank_pairs, screen_pairs
from federation.vertical.run import Released

__all__ = ["STABILITY_EPSILONS", "choose_pairs", "cross_sector_outputs", "factor_tables", "noise_scale_at",
           "ranking_stability"]

#: the ε per dataset at which the report shows how stable the rankings would be
STABILITY_EPSILONS = (0.5, 1.0, 2.0, 4.0, 8.0)
#: simulated releases per ε in that table
STABILITY_DRAWS = 20
#: the adjusted model ranks only the screened factors (15): its top 5 is the comparison that means something
ADJUSTED_TOP = 5

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


def cross_sector_outputs(cross: CrossSectorSpec, plan: CrossSectorPlan, released: Released,
                         noise_at: dict[float, float] | None = None) -> dict[str, Any]:
    """The study's outputs; ``noise_at``: for other ε per dataset, the noise there over this study's noise (the
    plan's scales all move together), for the privacy/utility table (:func:`ranking_stability`)."""
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
    screened = _screened(cross, ranked, released)
    return {
        "kind": "cross_sector_counts",
        "adjusted_model": _adjusted(screened, released),
        **({"privacy_utility": _or_why_not("the privacy/utility table could not be simulated",
                                           lambda: ranking_stability(screened, released, noise_at))}
           if noise_at else {}),
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


def _screened(cross: CrossSectorSpec, ranked: list[dict[str, Any]], released: Released) -> list[str]:
    """The largest top set of the ranking whose every pair was released (all of the screen's, unless listed
    pairs took the cap); empty if not even the top two."""
    from federation.vertical.model import statistics_from

    order = [str(row["factor"]) for row in ranked]
    for size in range(cross.pairs.screen_top, 1, -1):
        if statistics_from(released, order[:size]) is not None:
            return order[:size]
    return []


def _adjusted(screened: list[str], released: Released) -> dict[str, Any] | None:
    """The screened factors adjusted for each other (:mod:`federation.vertical.model`)."""
    from federation.vertical.model import adjusted_model, evaluate, statistics_from

    stats = statistics_from(released, screened) if screened else None
    if stats is None:
        return None
    screen = f"the {len(screened)} factors ranked strongest in stage 1, every pair among them released"
    fitted = _or_why_not("the model could not be fitted", lambda: adjusted_model(stats))
    if "unavailable" in fitted:
        return {"factors": [], "screen": screen, **fitted}
    return {**fitted, "evaluation": _or_why_not("the evaluation could not be computed", lambda: evaluate(stats)),
            "screen": screen}


def _or_why_not(failure: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``compute()``, or ``{"unavailable": failure (the error)}`` on a numerical failure. Everything computed from a
    study's released counts runs after every release was made and charged: a failure there must cost that one
    output, never the study its result."""
    import numpy as np

    try:
        return compute()
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as error:
        return {"unavailable": f"{failure} ({type(error).__name__}: {error})"}


def noise_scale_at(spec: StudySpec, plan: CrossSectorPlan, contracts: ContractSource, epsilon: float) -> float:
    """The noise of the same study at ``epsilon`` per dataset over its own: the plan recomputed at that ε (every
    noise scale of a count study moves by the same factor; checked)."""
    from federation.privacy import plan_study

    other = plan_study(spec.model_copy(update={"privacy": spec.privacy.model_copy(update={"epsilon": epsilon})}),
                       contracts).cross_sector
    assert other is not None
    ratios = [other.noise.cohort / plan.noise.cohort, other.noise.outcome_stage1 / plan.noise.outcome_stage1,
              other.noise.outcome_stage2 / plan.noise.outcome_stage2, other.noise.factor_stage2 / plan.noise.factor_stage2,
              *(other.noise.factor_stage1[d] / plan.noise.factor_stage1[d] for d in plan.noise.factor_stage1)]
    if max(ratios) - min(ratios) > 1e-6 * max(ratios):
        raise ValueError(f"the noise scales do not move together between ε {spec.privacy.epsilon} and {epsilon}")
    return ratios[0]


def _counts(released: Released) -> dict[str, dict[Any, tuple[float, float]]]:
    """Every released count of a count study, (value, sd) by field and key; cohort size and cases as ``single``."""
    return {"single": {"n": released.cohort_size, "cases": released.cases}, "exposed": dict(released.exposed),
            "exposed_cases": dict(released.exposed_cases), "both": dict(released.both),
            "both_cases": dict(released.both_cases)}


def _with_noise(released: Released, scale: float | None, normals: Any = None) -> Released:
    """A release drawn around ``released``: each count plus ``scale`` times its noise sd times its standard normal
    in ``normals`` (in :func:`_counts` order), sds scaled alike; with ``scale`` None, the counts taken as exact."""
    from dataclasses import replace

    found = _counts(released)
    i = 0
    for counts in found.values():
        for key, (value, sd) in counts.items():
            counts[key] = (value, 0.0) if scale is None else (value + scale * sd * float(normals[i]), scale * sd)
            i += 1
    return replace(released, cohort_size=found["single"]["n"], cases=found["single"]["cases"],
                   exposed=found["exposed"], exposed_cases=found["exposed_cases"], both=found["both"],
                   both_cases=found["both_cases"])


def ranking_stability(screened: list[str], released: Released, noise_at: dict[float, float],
                      draws: int = STABILITY_DRAWS) -> dict[str, Any]:
    """The privacy/utility table of a study without a known truth: for each ε per dataset, how many of the top 10
    a study at that ε would keep, simulated by taking this study's released counts as the exact ones and drawing
    ``draws`` releases around them with that ε's noise (post-processing: no privacy cost). Two rankings: the
    factors one at a time (|z|, top 10 of all), and the adjusted model over this study's ``screened`` factors
    (top :data:`ADJUSTED_TOP` of them)."""
    import statistics

    import numpy as np

    from federation.privacy import gaussian_release
    from federation.vertical.model import adjusted_model, auc_estimate, statistics_from

    def tops(found: Released) -> tuple[list[str], list[str], float | None]:
        ranked = rank_factors(factor_tables(found), len(found.exposed))
        stats = statistics_from(found, screened) if screened else None
        if stats is None:
            return [str(r["factor"]) for r in ranked[:10]], [], None
        return ([str(r["factor"]) for r in ranked[:10]],
                [str(r["factor"]) for r in adjusted_model(stats).get("factors", [])[:ADJUSTED_TOP]], auc_estimate(stats))

    def spread(values: list[float]) -> dict[str, float] | None:
        return {"mean": statistics.mean(values), "min": min(values), "max": max(values)} if values else None

    exact_factors, exact_adjusted, exact_auc = tops(_with_noise(released, None))
    counts = sum(len(found) for found in _counts(released).values())
    # standard normals from OpenDP, the same ones scaled for every ε (common random numbers: the rows differ
    # by the noise level, not by the luck of the draw; a simulation, not a release)
    normals = gaussian_release(np.zeros(draws * counts), 1.0).reshape(draws, counts)
    rows = []
    for epsilon, scale in sorted(noise_at.items()):
        kept_factors: list[float] = []
        kept_adjusted: list[float] = []
        aucs: list[float] = []
        for draw in range(draws):
            factors, adjusted, auc = tops(_with_noise(released, scale, normals[draw]))
            kept_factors.append(len(set(factors) & set(exact_factors)))
            if exact_adjusted:   # a draw whose counts determine no model keeps none
                kept_adjusted.append(len(set(adjusted) & set(exact_adjusted)))
            if auc is not None:
                aucs.append(auc)
        sd = max(sd for _, sd in released.exposed_cases.values()) * scale if released.exposed_cases else 0.0
        rows.append({"epsilon": epsilon, "noise_sd_exposed_cases": sd, "factors_kept": spread(kept_factors),
                     "adjusted_kept": spread(kept_adjusted),
                     # the AUC a study at this ε would report, over the draws whose counts determine the model
                     "adjusted_auc": spread(aucs), "adjusted_auc_draws": len(aucs)})
    return {"rows": rows, "draws": draws, "adjusted_top": ADJUSTED_TOP, "adjusted_auc_without_noise": exact_auc,
            "method": "this study's released counts taken as the exact ones; releases drawn around them with each "
                      "ε's noise (OpenDP); how many of the top 10 without that noise the factors one at a time keep, "
                      f"and of the top {ADJUSTED_TOP} the adjusted model over this study's screened factors (none "
                      "where a release's counts do not determine that model), and the AUC that model would report "
                      "(noise moves it both ways: fitted to the counts it is evaluated on, the model reads some noise "
                      "as separation; with more noise its coefficients blur and separate less). "
                      "Post-processing of the release: no privacy cost. It describes a town like the released one, "
                      "not a known truth."}


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
