"""Espoo's child-welfare risk-factor study across sectors: real processes against the same counts pooled.

What it measures, at 300,000 residents (≈62,000 children) by default:
- **the cost of not pooling**: wall time and bytes of the study on real Flower processes (TLS, a SuperNode
  per silo, 280 factors from 4 factor nodes, 105 pairs; linkage, BFV, noise) against the same counts
  computed on the pooled silos in one process (joins on identity codes, one matrix product);
- **utility**: the released top-10 factors by the template's ranking statistic against the same statistic
  computed exactly on the pooled counts (the run's own release, at ε = 1);
- **a privacy/utility table** at ε ∈ {0.5, 1, 2, 4, 8}: releases drawn from the study's own noise
  distribution (the plan's scales, OpenDP's discrete Gaussian) around the exact pooled counts — the
  equivalence test shows the encrypted protocol releases exactly these counts plus this noise — and the
  recall of (a) the exact statistic's top 10 and (b) the generator's true top-10 terms (main effects and
  interactions, `truth.json`) among the released top-10 factors and pairs.
Run:  ``.venv/bin/python -m benchmarks.cross_sector [--residents N] [--repeats R] [--no-processes]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._common import row
from federation.privacy import integer_noise, plan_study
from federation.templates import build_spec
from federation.vertical.analysis import Noisy, factor_table, rank_factors, rank_pairs, recall, screen_pairs
from federation.vertical.analysis import pair_table
from federation.vertical.model import adjusted_model, evaluate, statistics_from
from schemas import ContractCatalog
from schemas.identity import check_identity_codes
from schemas.synth import SynthConfig, synthesize
from tillit.local import LocalFederation, NodeSetup

SILOS = ("population_register", "child_welfare", "child_health", "social_services", "education", "employment")


def _valid(frame: pd.DataFrame) -> pd.DataFrame:
    codes = frame["person_id"].astype("str").where(frame["person_id"].notna())
    return frame[check_identity_codes(pd.Series(codes, dtype="str")).valid].drop_duplicates("person_id")


def pooled(data: Path, factors: dict[str, tuple[str, ...]]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Pool the silos on identity codes: the cohort's outcome y and its factor matrix X (columns named)."""
    register = _valid(pd.read_parquet(data / "population_register.parquet", columns=["person_id", "birth_date"]))
    birth = pd.to_datetime(register["birth_date"])
    age = 2024 - birth.dt.year - ((birth.dt.month > 12) | ((birth.dt.month == 12) & (birth.dt.day > 31)))
    table = register.loc[(age >= 0) & (age <= 17), ["person_id"]]
    clients = set(_valid(pd.read_parquet(data / "child_welfare.parquet", columns=["person_id"]))["person_id"])
    y = table["person_id"].isin(clients).to_numpy(dtype=np.int64)
    names: list[str] = []
    for dataset, columns in factors.items():
        silo = _valid(pd.read_parquet(data / f"{dataset.split('/')[1]}.parquet", columns=["person_id", *columns]))
        table = table.merge(silo, on="person_id", how="left")
        names += list(columns)
    x = table[names].fillna(False).astype(bool).to_numpy(dtype=np.int64)
    return y, x, names


def exact_counts(y: np.ndarray, x: np.ndarray) -> dict[str, Any]:
    return {"n": len(y), "cases": int(y.sum()), "exposed": x.sum(axis=0), "exposed_cases": x.T @ y}


def _tables(counts: dict[str, Any], names: list[str], sds: dict[str, float], holder: dict[str, str],
            noise: dict[str, float]) -> dict[str, dict[str, Any]]:
    n, cases = Noisy(float(counts["n"]), sds["n"]), Noisy(float(counts["cases"]), sds["cases"])
    return {f: factor_table(n, cases, Noisy(float(counts["exposed"][j]), noise[f"exposed:{holder[f]}"]),
                            Noisy(float(counts["exposed_cases"][j]), noise[f"cases:{holder[f]}"]))
            for j, f in enumerate(names)}


def _scales(plan: Any) -> tuple[dict[str, float], dict[str, float]]:
    noise = plan.cross_sector.noise
    sds = {"n": noise.cohort, "cases": noise.outcome_stage1}
    per = {}
    for dataset, s1 in noise.factor_stage1.items():
        per[f"exposed:{dataset}"] = noise.local(dataset)
        per[f"cases:{dataset}"] = float(np.hypot(s1, noise.outcome_stage1))
    return sds, per


def simulate(counts: dict[str, Any], x: np.ndarray, y: np.ndarray, names: list[str], plan: Any,
             truth_terms: list[str], repeats: int) -> dict[str, list[float]]:
    """Releases drawn from the study's noise around the exact counts; recall against the exact statistic and the truth."""
    holder = plan.cross_sector.holder
    sds, per = _scales(plan)
    exact_top = [r["factor"] for r in rank_factors(_tables(counts, names, sds, holder, per), 10)]
    index = {f: j for j, f in enumerate(names)}
    noise = plan.cross_sector.noise
    pair_sd = float(np.hypot(noise.factor_stage2, noise.outcome_stage2))
    found: dict[str, list[float]] = {"exact_top10": [], "truth_top10": [], "adjusted_truth_top10": []}
    for _ in range(repeats):
        draw = {"n": counts["n"] + int(integer_noise(1, sds["n"])[0]),
                "cases": counts["cases"] + int(integer_noise(1, sds["cases"])[0]),
                "exposed": counts["exposed"] + np.concatenate(
                    [integer_noise(len(c), per[f"exposed:{d}"]) for d, c in plan.cross_sector.factors.items()]),
                "exposed_cases": counts["exposed_cases"] + np.concatenate(
                    [integer_noise(len(c), per[f"cases:{d}"]) for d, c in plan.cross_sector.factors.items()])}
        tables = _tables(draw, names, sds, holder, per)
        ranked = rank_factors(tables, len(tables))
        top = [r["factor"] for r in ranked[:10]]
        pairs = screen_pairs(ranked, [], 15, plan.cross_sector.max_pairs, holder)
        n, cases = Noisy(float(draw["n"]), sds["n"]), Noisy(float(draw["cases"]), sds["cases"])
        pair_tables: dict[tuple[str, str] | str, dict[str, Any]] = {}
        for a, b in pairs:
            both = x[:, index[a]] * x[:, index[b]]
            noisy = [int(both.sum()) + int(integer_noise(1, pair_sd)[0]),
                     int(both @ y) + int(integer_noise(1, pair_sd)[0])]
            pair_tables[(a, b)] = pair_table(n, cases, (Noisy(*_pick(draw, "exposed", index[a], per, holder[a])),
                                                        Noisy(*_pick(draw, "exposed_cases", index[a], per, holder[a]))),
                                             (Noisy(*_pick(draw, "exposed", index[b], per, holder[b])),
                                              Noisy(*_pick(draw, "exposed_cases", index[b], per, holder[b]))),
                                             Noisy(noisy[0], pair_sd), Noisy(noisy[1], pair_sd))
        top_pairs = [":".join(r["pair"]) for r in rank_pairs(pair_tables, 10)]
        found["exact_top10"].append(recall(top, exact_top))
        found["truth_top10"].append(recall(top + top_pairs, truth_terms))
        released = SimpleNamespace(
            cohort_size=(draw["n"], sds["n"]), cases=(draw["cases"], sds["cases"]),
            exposed={f: _pick(draw, "exposed", index[f], per, holder[f]) for f in names},
            exposed_cases={f: _pick(draw, "exposed_cases", index[f], per, holder[f]) for f in names},
            both={p: (t["strata"]["11"]["count"], pair_sd) for p, t in pair_tables.items() if isinstance(p, tuple)})
        stats = statistics_from(released, [r["factor"] for r in ranked[:15]])
        if stats is not None:
            adjusted = [r["factor"] for r in adjusted_model(stats)["factors"][:10]]
            found["adjusted_truth_top10"].append(recall(adjusted + top_pairs, truth_terms))
    return found


def _pick(draw: dict[str, Any], kind: str, j: int, per: dict[str, float], dataset: str) -> tuple[float, float]:
    prefix = "exposed" if kind == "exposed" else "cases"
    return float(draw[kind][j]), per[f"{prefix}:{dataset}"]


def _pooled_same_model(x: np.ndarray, y: np.ndarray, names: list[str], screened: list[str],
                       truth: list[str]) -> None:
    """The template's model pooled and without noise — the exact logistic fit over the screened factors ranked by
    |z|, beside the pairs among them ranked by |z| of the log ratio of odds ratios from exact counts: the recall the
    released study is measured against."""
    from sklearn.linear_model import LogisticRegression

    columns = [names.index(f) for f in screened]
    design = x[:, columns].astype(float)
    fit = LogisticRegression(C=np.inf, max_iter=5000).fit(design, y)
    rows = np.column_stack([np.ones(len(y)), design])
    p = fit.predict_proba(design)[:, 1]
    se = np.sqrt(np.diag(np.linalg.inv((rows * (p * (1 - p))[:, None]).T @ rows))[1:])
    top = [screened[j] for j in np.argsort(-np.abs(fit.coef_[0] / se))[:10]]
    n, cases = Noisy(float(len(y)), 0.0), Noisy(float(y.sum()), 0.0)
    single = {f: (Noisy(float(design[:, j].sum()), 0.0), Noisy(float(design[:, j] @ y), 0.0))
              for j, f in enumerate(screened)}
    pairs: dict[tuple[str, str] | str, dict[str, Any]] = {}
    for i, a in enumerate(screened):
        for j, b in enumerate(screened[i + 1:], start=i + 1):
            both = design[:, i] * design[:, j]
            pairs[(min(a, b), max(a, b))] = pair_table(n, cases, single[a], single[b], Noisy(float(both.sum()), 0.0),
                                                      Noisy(float(both @ y), 0.0))
    top_pairs = [":".join(r["pair"]) for r in rank_pairs(pairs, 10)]
    print(f"  the same model pooled, no noise (exact logistic fit over the 15 screened factors, pairs from exact "
          f"counts): {recall(top + top_pairs, truth) * 10:.0f} of the truth's top 10 in its top-10 factors and pairs")


def _approximation(x: np.ndarray, y: np.ndarray, names: list[str], screened: list[str], plan: Any) -> None:
    """The adjusted model's logistic step against the exact logistic fit on the pooled screened design, no noise."""
    from sklearn.linear_model import LogisticRegression

    columns = [names.index(f) for f in screened]
    design = x[:, columns].astype(float)
    exact = LogisticRegression(C=np.inf, max_iter=5000).fit(design, y).coef_[0]
    counts = SimpleNamespace(
        cohort_size=(len(y), 0.0), cases=(float(y.sum()), 0.0),
        exposed={f: (float(design[:, j].sum()), 0.0) for j, f in enumerate(screened)},
        exposed_cases={f: (float(design[:, j] @ y), 0.0) for j, f in enumerate(screened)},
        both={tuple(sorted((a, b))): (float(design[:, i] @ design[:, j]), 0.0)
              for i, a in enumerate(screened) for j, b in enumerate(screened) if i < j},
        both_cases={tuple(sorted((a, b))): (float(design[:, i] * design[:, j] @ y), 0.0)
                    for i, a in enumerate(screened) for j, b in enumerate(screened) if i < j})
    stats = statistics_from(counts, screened)
    assert stats is not None
    fitted = adjusted_model(stats)
    model = {r["factor"]: r["log_odds"]["estimate"] for r in fitted["factors"]}
    step = np.array([model[f] for f in screened])
    print(f"  adjusted model, 15 screened factors, no noise: the logistic step's coefficients correlate "
          f"{np.corrcoef(step, exact)[0, 1]:.3f} with the exact logistic fit's, {np.polyfit(exact, step, 1)[0]:.2f}x "
          f"their size (mean |difference| {np.abs(step - exact).mean():.2f} in log odds)")
    _evaluation_against_rows(stats, design, y, step, fitted["intercept"]["log_odds"])
    _evaluation_under_noise(stats, screened, plan, draws=60)


def _evaluation_under_noise(exact: Any, screened: list[str], plan: Any, draws: int) -> None:
    """The evaluation's AUC from ``draws`` releases of the screened model's counts with the study's noise at ε = 1
    (OpenDP's discrete Gaussian, the plan's scale on every count): spread, bias, and how often the reported 95 %
    interval covers the AUC of the exact counts."""
    from federation.vertical.model import Statistics

    truth = evaluate(exact)["auc"]["estimate"]
    noise, holder = plan.cross_sector.noise, plan.cross_sector.holder
    single, per = _scales(plan)
    across = float(np.hypot(noise.factor_stage2, noise.outcome_stage2))
    sds = np.zeros(len(exact.values))
    for key, position in exact.index.items():
        kind, names = key[0], key[1:]
        if kind in single:
            sds[position] = single[kind]
        elif kind in ("exposed", "exposed_cases"):
            sds[position] = per[f"{'exposed' if kind == 'exposed' else 'cases'}:{holder[names[0]]}"]
        else:   # a pair's counts: within one node only its 'both' escapes the outcome's noise
            within = kind == "both" and holder[names[0]] == holder[names[1]]
            sds[position] = noise.factor_stage2 if within else across
    estimates, covered = [], 0
    for _ in range(draws):
        values = exact.values + np.array([integer_noise(1, sd)[0] for sd in sds], dtype=float)
        auc = evaluate(Statistics(exact.factors, values, sds, exact.index)).get("auc")
        if auc is None:
            continue
        estimates.append(auc["estimate"])
        covered += auc["lower"] <= truth <= auc["upper"]
    print(f"  its AUC under the study's noise at ε = 1 ({draws} releases of the same counts): mean "
          f"{statistics.mean(estimates):.3f} (sd {statistics.pstdev(estimates):.3f}) against {truth:.3f} without noise; "
          f"the 95 % interval covered it in {covered / len(estimates):.0%}; {draws - len(estimates)} unavailable")


def _evaluation_against_rows(stats: Any, design: np.ndarray, y: np.ndarray, step: np.ndarray, intercept: float) -> None:
    """The evaluation from the counts (no noise) against the same measures on the pooled rows' own scores."""
    from sklearn.metrics import roc_auc_score

    found = evaluate(stats)
    rows = np.column_stack([np.ones(len(y)), design])
    score = rows @ np.linalg.lstsq(rows, y, rcond=None)[0]
    risk = 1 / (1 + np.exp(-(intercept + design @ step)))
    print(f"  its evaluation from the counts alone, no noise: AUC {found['auc']['estimate']:.4f} (binormal) against "
          f"{roc_auc_score(y, score):.4f} on the pooled rows' scores; Brier {found['brier']['estimate']:.5f} against "
          f"{np.mean((y - score) ** 2):.5f}; the logistic step's mean risk "
          f"{found['calibration_in_the_large']['mean_predicted_risk']:.4f} against {risk.mean():.4f} (observed "
          f"{y.mean():.4f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--residents", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=20, help="noise draws per epsilon in the utility table")
    parser.add_argument("--epsilons", default="0.5,1,2,4,8")
    parser.add_argument("--no-processes", action="store_true", help="only the pooled baseline and the utility table")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tillit-cross-") as tmp:
        root = Path(tmp)
        synthetic = synthesize(SynthConfig(out=root / "data", residents=args.residents, seed=args.seed))
        truth = json.loads(synthetic.truth_path.read_text())["child_welfare"]
        truth_terms = [t["term"] for t in truth["ranking"][:10]]
        catalog = ContractCatalog()
        spec = build_spec("child_welfare_risk_factors", "bench-risk", "2024", {"municipality": "espoo", "epsilon": 1.0},
                          catalog)
        plan = plan_study(spec, catalog)
        assert plan.cross_sector is not None
        data = root / "data" / "espoo"
        started = time.perf_counter()
        y, x, names = pooled(data, plan.cross_sector.factors)
        counts = exact_counts(y, x)
        index = {f: j for j, f in enumerate(names)}
        sds, per = _scales(plan)
        exact_ranked = rank_factors(_tables(counts, names, sds, plan.cross_sector.holder, per), len(names))
        for a, b in screen_pairs(exact_ranked, [], 15, plan.cross_sector.max_pairs, plan.cross_sector.holder):
            both = x[:, index[a]] * x[:, index[b]]
            int(both.sum()), int(both @ y)
        pooled_seconds = time.perf_counter() - started
        print(f"cohort {len(y):,} children, {int(y.sum()):,} cases, {len(names)} factors; "
              f"per-dataset charge at ε=1: " + ", ".join(f"{d.split('/')[1]} {plan.epsilon_of(d):.3f}"
                                                         for d in spec.datasets))
        print(row("pooled in one process (join + counts + 105 pairs)", pooled_seconds))
        exact_top = [r["factor"] for r in exact_ranked[:10]]
        _approximation(x, y, names, [r["factor"] for r in exact_ranked[:15]], plan)
        _pooled_same_model(x, y, names, [r["factor"] for r in exact_ranked[:15]], truth_terms)
        if not args.no_processes:
            silos = [NodeSetup(f"espoo/{s}", s, data / f"{s}.parquet", epsilon_cap=5.0) for s in SILOS]
            spec_path = root / "spec.json"
            spec_path.write_text(spec.model_dump_json())
            with LocalFederation(root / "fed", silos) as fed:
                started = time.perf_counter()
                result = fed.run(spec_path, timeout=1800)
                federated = time.perf_counter() - started
            assert result["status"] == "completed", result.get("error")
            outputs = result["outputs"]
            moved = sum(r["bytes_sent"] + r["bytes_received"] for r in result["rounds"])
            print(row("federated: 6 SuperNodes, linkage, BFV, noise (whole run)", federated, pooled_seconds))
            print(f"  bytes through the SuperLink: {moved / 1e6:,.0f} MB (by step: "
                  + ", ".join(f"{r['step']} {(r['bytes_sent'] + r['bytes_received']) / 1e6:.0f}"
                              for r in result["rounds"]) + ")")
            released_top = outputs["ranking"][:10]
            adjusted = outputs.get("adjusted_model") or {"factors": []}
            adjusted_top = [r["factor"] for r in adjusted["factors"][:10]]
            print(f"  adjusted model (released): truth's top-10 terms among its top-10 factors and the top-10 pairs: "
                  f"{recall(adjusted_top + [':'.join(p['pair']) for p in outputs['pairs'][:10]], truth_terms) * 10:.0f}"
                  " of 10")
            evaluation = adjusted.get("evaluation") or {}
            if "auc" in evaluation:
                auc = evaluation["auc"]
                print(f"  adjusted model's evaluation (released counts, ε = 1): AUC {auc['estimate']:.3f} "
                      f"({auc['lower']:.3f}-{auc['upper']:.3f}; noise {100 * auc['noise_share']:.0f} % of its "
                      f"variance); the logistic step's mean risk "
                      f"{evaluation['calibration_in_the_large']['mean_predicted_risk']:.4f} against "
                      f"{evaluation['calibration_in_the_large']['observed_rate']:.4f} observed")
            else:
                print(f"  adjusted model's evaluation: {evaluation.get('unavailable')}")
            print(f"  released top-10 factors vs the same statistic on pooled counts: "
                  f"{recall(released_top, exact_top) * 10:.0f} of 10; truth's top-10 terms among the released "
                  f"top-10 factors and pairs: "
                  f"{recall(released_top + [':'.join(p['pair']) for p in outputs['pairs'][:10]], truth_terms) * 10:.0f}"
                  " of 10")
        print(f"\nprivacy/utility ({args.repeats} noise draws each; mean [min-max] of 10):")
        print(f"  {'epsilon':>7}  {'exposed-case sd':>15}  {'exact top-10 kept':>22}  {'true top-10 terms found':>24}"
              f"  {'... by the adjusted model':>26}")
        for epsilon in (float(e) for e in args.epsilons.split(",")):
            plan_e = plan_study(spec.model_copy(update={"privacy": spec.privacy.model_copy(update={"epsilon": epsilon})}),
                                catalog)
            found = simulate(counts, x, y, names, plan_e, truth_terms, args.repeats)
            sd = max(_scales(plan_e)[1][k] for k in _scales(plan_e)[1] if k.startswith("cases:"))
            cells = [f"{statistics.mean(v) * 10:.1f} [{min(v) * 10:.0f}-{max(v) * 10:.0f}]" if v else "-"
                     for v in found.values()]
            print(f"  {epsilon:>7g}  {sd:>15.0f}  {cells[0]:>22}  {cells[1]:>24}  {cells[2]:>26}")


if __name__ == "__main__":
    main()
