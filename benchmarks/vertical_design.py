"""Design input for the multivariable cross-sector model: what an all-factor iterative DP logistic regression
could find, simulated on the pooled synthetic town, against the one-shot model over screened factors.

Not a protocol run: the children's factors and outcome are pooled in one process (as ``benchmarks.cross_sector``
pools them for its baseline) and the noise a vertical first-order protocol would add is drawn as its plan would
draw it — per round, every child's gradient x·(p − y) clipped to ``--clip`` in L2 and Gaussian noise (OpenDP) on
the summed gradient; the ρ of one ε-per-dataset study (zCDP, δ = 1e-6) split over the rounds. Steps are
preconditioned by the diagonal curvature at the null model, ȳ(1 − ȳ)·(exposed count) — known from the released
stage-1 counts, so free — times ``--step`` (the factors share a latent vulnerability, so full diagonal steps
diverge), with scikit-learn's ridge (1); the estimate is the mean of the last half of the iterates, and factors
are ranked by |z| with z = β / sqrt(sampling variance + the noise the averaged iterates keep). Prints how many
of ``truth.json``'s top-10 terms (6 main effects, 4 cross-sector interactions) are in the top 10, beside the
pooled exact logistic fits, without noise, of main effects alone, with every pair among the 15 marginally
strongest factors, and with the truth's own interactions (the ceiling of any screen). A main-effects model can
find at most 6.

Run:  ``.venv/bin/python -m benchmarks.vertical_design [--repeats 5] [--epsilons 0.5,1,2,4,8]``
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from benchmarks.cross_sector import pooled
from federation.privacy import gaussian_release, plan_study
from federation.privacy._accounting import rho_for_epsilon
from federation.templates import build_spec
from federation.vertical.analysis import Noisy, factor_table, rank_factors
from schemas import ContractCatalog
from schemas.synth import SynthConfig, synthesize


def _fit(x: np.ndarray, y: np.ndarray, rho: float, clip: float, rounds: int, step: float) -> np.ndarray:
    """The first-order protocol's iterates (simulated): per-child clipped gradients, summed, noised."""
    n, d = x.shape
    design = np.column_stack([x, np.ones(n)])
    rate = float(y.mean())
    sigma = clip * math.sqrt(rounds) / math.sqrt(2.0 * rho)
    curvature = np.append(rate * (1 - rate) * x.sum(axis=0), rate * (1 - rate) * n) + 1.0
    beta = np.zeros(d + 1)
    beta[-1] = math.log(rate / (1 - rate))
    iterates = []
    for _ in range(rounds):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -30, 30)))
        per_child = design * (p - y)[:, None]
        norms = np.linalg.norm(per_child, axis=1)
        per_child *= np.minimum(1.0, clip / np.maximum(norms, 1e-12))[:, None]
        gradient = gaussian_release(per_child.sum(axis=0), sigma) + beta
        beta = beta - step * gradient / curvature
        iterates.append(beta.copy())
    kept = rounds - rounds // 2
    estimate = np.mean(iterates[-kept:], axis=0)
    # the noise the mean of the kept iterates keeps, per coordinate (iterates taken as independent: optimistic)
    noise_se = step * sigma / curvature / math.sqrt(kept)
    return np.stack([estimate, noise_se])


def _pooled_models(x: np.ndarray, y: np.ndarray, names: list[str], truth: dict[str, Any], terms: set[str]) -> None:
    """What the model families could find with no noise at all, pooled: the ceiling the ≥ 6 target is set against.

    Terms ranked by |coefficient| (as ``truth.json`` ranks them) and by |z|; interactions enter as products of
    two columns: those among the 15 factors a marginal screen ranks strongest (what a study can choose without
    residuals), or the truth's own (an oracle, the ceiling of any screen)."""
    n = len(y)
    cohort, cases = Noisy(float(n), 0.0), Noisy(float(y.sum()), 0.0)
    tables = {f: factor_table(cohort, cases, Noisy(float(x[:, j].sum()), 0.0), Noisy(float(x[:, j] @ y), 0.0))
              for j, f in enumerate(names)}
    marginal = [str(row["factor"]) for row in rank_factors(tables, 15)]    # the template's screen, without noise
    index = {f: j for j, f in enumerate(names)}
    screened = [(a, b) for k, a in enumerate(marginal) for b in marginal[k + 1:]]
    oracle = [tuple(t["factors"]) for t in truth["ranking"] if len(t["factors"]) == 2]
    for label, pairs in (("main effects of all factors", []),
                         ("+ every pair among the 15 marginally strongest", screened),
                         ("+ the truth's own interactions (oracle)", oracle)):
        columns = np.column_stack([x, *(x[:, index[p]] * x[:, index[q]] for p, q in pairs)]) if pairs else x
        labels = names + [f"{p}:{q}" if f"{p}:{q}" in terms else f"{q}:{p}" for p, q in pairs]
        fit = LogisticRegression(C=1e6, max_iter=5000).fit(columns, y)
        design = np.column_stack([columns, np.ones(n)])
        p = fit.predict_proba(columns)[:, 1]
        variance = np.diag(np.linalg.inv((design * (p * (1 - p))[:, None]).T @ design + 1e-6 * np.eye(design.shape[1])))
        coefficient = fit.coef_[0]
        by_size = {labels[j] for j in np.argsort(-np.abs(coefficient))[:10]}
        by_z = {labels[j] for j in np.argsort(-np.abs(coefficient / np.sqrt(variance[:-1])))[:10]}
        print(f"pooled exact logistic fit, no noise, {label} ({columns.shape[1]} terms): "
              f"{len(terms & by_size)} of the truth's top 10 by |coefficient|, {len(terms & by_z)} by |z|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--residents", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epsilons", default="0.5,1,2,4,8")
    parser.add_argument("--clip", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--step", type=float, default=0.2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tillit-vertical-") as tmp:
        synthetic = synthesize(SynthConfig(out=Path(tmp), residents=args.residents, seed=0))
        truth = json.loads(synthetic.truth_path.read_text())["child_welfare"]
        terms = {t["term"] for t in truth["ranking"][:10]}
        catalog = ContractCatalog()
        spec = build_spec("child_welfare_risk_factors", "design", "2024", {"municipality": "espoo", "epsilon": 1.0},
                          catalog)
        plan = plan_study(spec, catalog)
        assert plan.cross_sector is not None
        y, x, names = pooled(Path(tmp) / "espoo", plan.cross_sector.factors)
    x = x.astype(float)
    print(f"{len(y):,} children, {int(y.sum()):,} cases, {len(names)} factors; truth's top 10: "
          f"{sum(1 for t in terms if ':' not in t)} main effects, {sum(1 for t in terms if ':' in t)} interactions")
    exact = LogisticRegression(C=1e6, max_iter=3000).fit(x, y)
    design = np.column_stack([x, np.ones(len(y))])
    p = exact.predict_proba(x)[:, 1]
    sampling = np.diag(np.linalg.inv((design * (p * (1 - p))[:, None]).T @ design + 1e-6 * np.eye(len(names) + 1)))
    _pooled_models(x, y, names, truth, terms)
    print(f"iterative first-order DP fit, simulated (clip {args.clip}, {args.rounds} rounds, step {args.step}; "
          f"{args.repeats} draws each; mean [min-max]):")
    for epsilon in (float(e) for e in args.epsilons.split(",")):
        rho = rho_for_epsilon(epsilon, 1e-6)
        found = []
        for _ in range(args.repeats):
            estimate, noise_se = _fit(x, y, rho, args.clip, args.rounds, args.step)
            z = estimate[:-1] / np.sqrt(sampling[:-1] + noise_se[:-1] ** 2)
            found.append(len(terms & {names[j] for j in np.argsort(-np.abs(z))[:10]}))
        print(f"  ε {epsilon:g}: {statistics.mean(found):.1f} [{min(found)}-{max(found)}] of 10")


if __name__ == "__main__":
    main()
