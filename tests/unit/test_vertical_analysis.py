"""Risk-factor post-processing: exact tables at zero noise, intervals that cover under noise, rankings, screening."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from federation.projection import Z95
from federation.vertical.analysis import (
    Noisy,
    factor_table,
    pair_kind,
    pair_table,
    rank_factors,
    rank_pairs,
    recall,
    screen_pairs,
)

N_CHILDREN = 62_000


def _exact(*counts: float) -> list[Noisy]:
    return [Noisy(float(c), 0.0) for c in counts]


def _factor_probabilities(prevalence: float, risk_unexposed: float, odds_ratio: float) -> np.ndarray:
    """Cell probabilities in the order unexposed cases, unexposed non-cases, exposed cases, exposed non-cases."""
    odds = odds_ratio * risk_unexposed / (1 - risk_unexposed)
    risk_exposed = odds / (1 + odds)
    return np.array([(1 - prevalence) * risk_unexposed, (1 - prevalence) * (1 - risk_unexposed),
                     prevalence * risk_exposed, prevalence * (1 - risk_exposed)])


def _factor_release(cells: np.ndarray) -> np.ndarray:
    """n, cases, exposed, exposed_cases from cells (..., 4)."""
    return np.stack([cells.sum(-1), cells[..., 0] + cells[..., 2], cells[..., 2] + cells[..., 3], cells[..., 2]], -1)


# -- factor_table ----------------------------------------------------------------------------------------------

def test_factor_table_at_zero_noise_is_the_exact_table_with_woolf_and_katz_intervals() -> None:
    # Prepare: 1,000 children; 100 exposed of whom 30 cases; 60 cases among the 900 unexposed
    n, cases, exposed, exposed_cases = _exact(1000, 90, 100, 30)
    # Execute
    table = factor_table(n, cases, exposed, exposed_cases)
    # Assert: OR = 30·840/(70·60) = 6, RR = 0.3/(60/900) = 4.5, by hand
    assert table["cells"] == {"unexposed_cases": 60.0, "unexposed_noncases": 840.0, "exposed_cases": 30.0,
                              "exposed_noncases": 70.0}
    assert table["prevalence"] == pytest.approx(0.1)
    assert table["risk_exposed"] == pytest.approx(0.3) and table["risk_unexposed"] == pytest.approx(60 / 900)
    assert table["odds_ratio"]["estimate"] == pytest.approx(6.0)
    assert table["risk_ratio"]["estimate"] == pytest.approx(4.5)
    woolf = math.sqrt(1 / 30 + 1 / 70 + 1 / 60 + 1 / 840)
    assert table["se_log_or"] == pytest.approx(woolf, rel=1e-12)
    assert math.log(table["odds_ratio"]["upper"] / table["odds_ratio"]["lower"]) == pytest.approx(2 * Z95 * woolf)
    assert table["odds_ratio"]["lower"] == pytest.approx(6.0 * math.exp(-Z95 * woolf))
    katz = math.sqrt(1 / 30 - 1 / 100 + 1 / 60 - 1 / 900)
    assert table["risk_ratio"]["se"] == pytest.approx(katz, rel=1e-12)
    assert table["z"] == pytest.approx(math.log(6.0) / woolf) and table["noise_share"] == 0.0


def test_factor_table_floors_cells_for_the_ratios_but_reports_them_raw() -> None:
    # Prepare: noise has pushed the exposed cases below zero
    n, cases, exposed, exposed_cases = _exact(1000, 90, 100, -4)
    # Execute
    table = factor_table(n, cases, exposed, exposed_cases)
    # Assert
    assert table["cells"]["exposed_cases"] == -4.0 and table["cells_used"]["exposed_cases"] == 0.5
    assert table["odds_ratio"]["estimate"] == pytest.approx(0.5 * (1000 - 100 - 94) / (104 * 94))


def test_tables_stay_finite_json_when_noise_swamps_every_cell() -> None:
    # Prepare: a release so noisy that every cell of both tables sits at the floor
    sd = 1e6
    tiny = [Noisy(0.0, sd)] * 8
    # Execute
    factor = factor_table(*tiny[:4])
    pair = pair_table(tiny[0], tiny[1], (tiny[2], tiny[3]), (tiny[4], tiny[5]), tiny[6], tiny[7])
    # Assert: strict JSON (no inf, no nan), and the noise owns the variance
    json.dumps([factor, pair], allow_nan=False)
    assert factor["odds_ratio"]["upper"] > 1e300 and pair["noise_share"] == pytest.approx(1.0)


def test_a_release_needs_a_finite_non_negative_sd() -> None:
    for value, sd in ((10.0, -1.0), (10.0, math.inf), (math.nan, 1.0)):
        with pytest.raises(ValueError):
            Noisy(value, sd)


def test_noise_part_of_the_variance_follows_the_shared_released_counts() -> None:
    # Prepare: one fixed true table (no sampling), 4,000 noisy releases at sd 90
    rng = np.random.default_rng(20)
    truth = np.round(N_CHILDREN * _factor_probabilities(0.12, 0.04, 2.0))
    release = _factor_release(truth)
    sd = 90.0
    expected = factor_table(*(Noisy(float(v), sd) for v in release))["odds_ratio"]
    # Execute
    noisy = release + rng.normal(0.0, sd, size=(4000, 4))
    log_or = [math.log(factor_table(*(Noisy(float(v), sd) for v in row))["odds_ratio"]["estimate"]) for row in noisy]
    # Assert: the empirical variance is the delta-method noise term (cell-by-cell propagation gives ~40 % less)
    assert np.var(log_or) == pytest.approx(expected["noise_variance"], rel=0.15)


def test_factor_intervals_with_sampling_and_noise_have_the_delta_method_variance_and_cover() -> None:
    # Prepare: 4,000 cohorts drawn from a known table (prevalence 12 %, OR 2), each released with noise sd 90
    rng = np.random.default_rng(21)
    probabilities = _factor_probabilities(0.12, 0.04, 2.0)
    sd = 90.0
    total = factor_table(*(Noisy(float(v), sd) for v in _factor_release(N_CHILDREN * probabilities)))
    releases = _factor_release(rng.multinomial(N_CHILDREN, probabilities, size=4000).astype(float))
    releases += rng.normal(0.0, sd, size=releases.shape)
    # Execute
    tables = [factor_table(*(Noisy(float(v), sd) for v in row))["odds_ratio"] for row in releases]
    # Assert
    log_or = np.log([t["estimate"] for t in tables])
    assert np.var(log_or) == pytest.approx(total["se_log_or"] ** 2, rel=0.15)
    assert total["noise_share"] > 0.5
    coverage = np.mean([t["lower"] <= 2.0 <= t["upper"] for t in tables])
    assert 0.93 <= coverage <= 0.97


# -- pair_table ------------------------------------------------------------------------------------------------

#: a hand-built 2×2×2 table: stratum -> (children, cases)
_STRATA = {"00": (800, 40), "10": (100, 10), "01": (60, 6), "11": (40, 12)}


def _pair_release(strata: dict[str, tuple[float, float]]) -> list[float]:
    """n, cases, a.exposed, a.exposed_cases, b.exposed, b.exposed_cases, both, both_cases."""
    count, cases = {s: v[0] for s, v in strata.items()}, {s: v[1] for s, v in strata.items()}
    return [sum(count.values()), sum(cases.values()), count["10"] + count["11"], cases["10"] + cases["11"],
            count["01"] + count["11"], cases["01"] + cases["11"], count["11"], cases["11"]]


def _pair(values: list[float], sd: float) -> dict[str, Any]:
    r = [Noisy(float(v), sd) for v in values]
    return pair_table(r[0], r[1], (r[2], r[3]), (r[4], r[5]), r[6], r[7])


def test_pair_table_at_zero_noise_recovers_the_strata_ror_and_reri() -> None:
    # Prepare
    release = _pair_release({s: (float(c), float(k)) for s, (c, k) in _STRATA.items()})
    # Execute
    table = _pair(release, 0.0)
    # Assert: odds 00 = 40/760, 10 = 10/90, 01 = 6/54, 11 = 12/28; risks 0.05, 0.1, 0.1, 0.3
    assert {s: (v["count"], v["cases"]) for s, v in table["strata"].items()} == _STRATA
    or10, or01, or11 = (10 / 90) / (40 / 760), (6 / 54) / (40 / 760), (12 / 28) / (40 / 760)
    assert table["joint_odds_ratio"]["estimate"] == pytest.approx(or11)
    assert table["ratio_of_odds_ratios"]["estimate"] == pytest.approx(or11 / (or10 * or01))
    assert table["reri"]["estimate"] == pytest.approx(6.0 - 2.0 - 2.0 + 1.0)
    woolf = math.sqrt(sum(1 / c for c in (40, 760, 10, 90, 6, 54, 12, 28)))
    assert table["se_log_ror"] == pytest.approx(woolf, rel=1e-12)
    assert table["z"] == pytest.approx(math.log(or11 / (or10 * or01)) / woolf)


def test_pair_intervals_cover_under_sampling_and_noise() -> None:
    # Prepare: a 12 %, b 11 %, both 4 %; baseline risk 3 %, OR 2 and 1.8, ROR 1.5; noise sd 40
    rng = np.random.default_rng(22)
    share = {"00": 0.81, "10": 0.08, "01": 0.07, "11": 0.04}
    odds = {"00": 0.03 / 0.97}
    odds |= {"10": 2.0 * odds["00"], "01": 1.8 * odds["00"], "11": 2.0 * 1.8 * 1.5 * odds["00"]}
    risk = {s: o / (1 + o) for s, o in odds.items()}
    probabilities = np.ravel([[share[s] * risk[s], share[s] * (1 - risk[s])] for s in share])
    rr = {s: risk[s] / risk["00"] for s in risk}
    truth = {"ratio_of_odds_ratios": 1.5, "joint_odds_ratio": 2.0 * 1.8 * 1.5,
             "reri": rr["11"] - rr["10"] - rr["01"] + 1}
    sd = 40.0
    covered = {key: 0 for key in truth}
    # Execute
    for cells in rng.multinomial(N_CHILDREN, probabilities, size=2000):
        strata = {s: (float(cells[2 * i] + cells[2 * i + 1]), float(cells[2 * i])) for i, s in enumerate(share)}
        release = np.array(_pair_release(strata)) + rng.normal(0.0, sd, size=8)
        table = _pair(list(release), sd)
        for key, value in truth.items():
            covered[key] += table[key]["lower"] <= value <= table[key]["upper"]
    # Assert
    for key in truth:
        assert 0.92 <= covered[key] / 2000 <= 0.98, key


# -- rankings and screening ------------------------------------------------------------------------------------

def test_rank_factors_orders_by_absolute_z_and_breaks_ties_by_name() -> None:
    # Prepare: a protective factor ties a harmful one
    tables = {"b": {"z": 2.0}, "a": {"z": -2.0}, "d": {"z": 0.5}, "c": {"z": 3.0}}
    shuffled = {k: tables[k] for k in ("d", "c", "a", "b")}
    # Execute
    ranked, again = rank_factors(tables, top=3), rank_factors(shuffled, top=3)
    # Assert
    assert [(r["rank"], r["factor"], r["z"]) for r in ranked] == [(1, "c", 3.0), (2, "a", -2.0), (3, "b", 2.0)]
    assert again == ranked


def test_rank_pairs_orders_by_absolute_z_of_log_ror_and_breaks_ties_by_names() -> None:
    # Prepare
    tables: dict[tuple[str, str] | str, dict[str, float]] = {
        ("b", "c"): {"z": -1.5}, ("a", "d"): {"z": 1.5}, ("a", "b"): {"z": 4.0}, "x:y": {"z": 0.1}}
    # Execute
    ranked = rank_pairs(tables, top=10)
    # Assert
    assert [(r["rank"], r["pair"]) for r in ranked] == [(1, ["a", "b"]), (2, ["a", "d"]), (3, ["b", "c"]),
                                                        (4, "x:y")]
    assert rank_pairs(dict(reversed(tables.items())), top=10) == ranked


def test_screen_pairs_takes_listed_pairs_first_then_the_screen_deduplicated_and_capped() -> None:
    # Prepare: five ranked factors from two datasets; "orphan" is ranked but held by no dataset
    ranked = [{"factor": f, "rank": r} for r, f in enumerate(["f1", "f2", "f3", "f4", "orphan", "f5"], start=1)]
    holder = {"f1": "health", "f2": "health", "f3": "education", "f4": "education", "f5": "health"}
    listed = [("f4", "f1"), ("f1", "f4"), ("zz", "f1"), ("f2", "f2"), ("f5", "f3"), ("orphan", "f1")]
    # Execute
    pairs = screen_pairs(ranked, listed, screen_top=3, max_pairs=4, holder=holder)
    everything = screen_pairs(ranked, listed, screen_top=3, max_pairs=100, holder=holder)
    # Assert: listed (sorted, once, known names only), then f1×f2 (rank sum 3), f1×f3 (4), f2×f3 (5)
    assert pairs == [("f1", "f4"), ("f3", "f5"), ("f1", "f2"), ("f1", "f3")]
    assert everything == [*pairs, ("f2", "f3")]
    assert screen_pairs(ranked, listed, screen_top=3, max_pairs=1, holder=holder) == [("f1", "f4")]
    assert [pair_kind(a, b, holder) for a, b in everything] == ["across", "across", "within", "across", "across"]


def test_recall_is_the_share_of_the_truth_found() -> None:
    assert recall(["a", "b", "x", "a"], ["a", "b", "c", "d"]) == 0.5
    assert recall([], ["a"]) == 0.0
    with pytest.raises(ValueError):
        recall(["a"], [])


def _cohort(rng: np.random.Generator, factors: int = 280, effects: int = 30) -> np.ndarray:
    """Exact counts n, cases, exposed[j], exposed_cases[j] of a cohort like the synthetic municipality's.

    Prevalences 1–15 %, indicators correlated through a latent vulnerability, 30 main effects with
    log ORs from 1.3 down to 0.3 (15 % protective), intercept set for a 4.5 % outcome.
    """
    prevalence = rng.uniform(0.01, 0.15, factors)
    loading = rng.uniform(0.0, 1.0, factors)
    effect = rng.choice(factors, effects, replace=False)
    beta = np.linspace(1.3, 0.3, effects) * np.where(rng.random(effects) < 0.85, 1.0, -1.0)
    vulnerability = rng.normal(0.0, 1.0, N_CHILDREN).astype(np.float32)
    logit = (np.log(prevalence / (1 - prevalence)).astype(np.float32)[None, :]
             + loading.astype(np.float32)[None, :] * vulnerability[:, None])
    x = rng.random((N_CHILDREN, factors), dtype=np.float32) < 1 / (1 + np.exp(-logit))
    eta = x[:, effect].astype(float) @ beta
    low, high = -15.0, 5.0
    for _ in range(50):
        mid = (low + high) / 2
        low, high = (low, mid) if np.mean(1 / (1 + np.exp(-(mid + eta)))) > 0.045 else (mid, high)
    y = rng.random(N_CHILDREN) < 1 / (1 + np.exp(-(low + eta)))
    return np.concatenate([[N_CHILDREN, y.sum()], x.sum(axis=0), x[y].sum(axis=0)]).astype(float)


def _top10(counts: np.ndarray, sd: float, by: str) -> list[str]:
    k = (len(counts) - 2) // 2
    tables = {f"f{j:03d}": factor_table(Noisy(counts[0], sd), Noisy(counts[1], sd), Noisy(counts[2 + j], sd),
                                        Noisy(counts[2 + k + j], sd)) for j in range(k)}
    if by == "z":
        return [str(row["factor"]) for row in rank_factors(tables, top=10)]
    return sorted(tables, key=lambda f: (-abs(math.log(tables[f]["odds_ratio"]["estimate"])), f))[:10]


def _recalls(seed: int, cohorts: int, sd: float) -> tuple[list[float], list[float]]:
    """Per cohort: how much of the exact top 10 the noisy top 10 keeps, by |z| and by |log OR|."""
    rng = np.random.default_rng(seed)
    by_z, by_or = [], []
    for _ in range(cohorts):
        exact = _cohort(rng)
        noisy = exact + rng.normal(0.0, sd, size=exact.shape)
        by_z.append(recall(_top10(noisy, sd, "z"), _top10(exact, 0.0, "z")))
        by_or.append(recall(_top10(noisy, sd, "or"), _top10(exact, 0.0, "or")))
    return by_z, by_or


def test_z_ranking_keeps_more_of_the_exact_top_ten_than_the_noisy_odds_ratio() -> None:
    # Prepare: eight seeded cohorts of 62,000 children and 280 factors; every count released with noise sd 100
    seed, cohorts, sd = 23, 8, 100.0
    # Execute: the exact top 10 of each statistic (sd 0) against the same statistic's noisy top 10
    by_z, by_or = _recalls(seed, cohorts, sd)
    # Assert: z keeps 6–7 of 10 on average (3–9 in single cohorts over 160 simulated), the raw OR almost none
    assert np.mean(by_z) >= 0.5
    assert np.mean(by_z) - np.mean(by_or) >= 0.4
