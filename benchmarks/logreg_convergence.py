"""Rounds and wall time for the DP logistic regression to reach pooled accuracy: noisy Newton vs DP-GD.

A census-like dataset (``schemas/synth/census.py``: ~49,000 people shaped like the UCI Adult extract, 13
features, 87 encoded coefficients) under a team's own contract is split over 3 and 5 municipal silos. Each
configuration is one study at ε = 1 per dataset on real Flower processes (TLS, SuperNode authentication, warm
nodes; a first study per federation for validation and caches), and its model is scored on held-out rows.
Target: scikit-learn's non-private logistic regression on the pooled training rows, minus 0.01.

- Newton (the default optimizer) with 5, 10 and 20 rounds (20 is its default);
- DP-GD as it was the default (10 rounds x 5 local steps, learning rate 2, clipping 1), and with 40 and 100
  rounds (the issue measured 100 x 10 steps reaching 0.8375 on real data).

Each study's privacy cost is the same (ε = 1); only the rounds, hence wall time, differ.
Run:  ``.venv/bin/python -m benchmarks.logreg_convergence [--nodes 3,5] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from federation.privacy import plan_study
from federation.spec import parse_spec
from federation.tasks import encode
from schemas import ContractCatalog
from schemas.synth.census import CONTRACT, FEATURES, OUTCOME, make_census, write_silos
from tillit.local import LocalFederation, NodeSetup

NAMES = ("espoo", "vantaa", "helsinki", "turku", "oulu")
TEAM_CONTRACT = CONTRACT.replace("range: [0, 99999]", "range: [0, 99999]\n    warn_range: [0, 20000]")
#: (label, model section)
CONFIGURATIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("Newton, 5 rounds", {"optimizer": "newton", "rounds": 5}),
    ("Newton, 10 rounds", {"optimizer": "newton", "rounds": 10}),
    ("Newton, 20 rounds (default)", {"optimizer": "newton"}),
    ("DP-GD, 10 x 5 steps, lr 2 (the old default)", {"optimizer": "gradient_descent", "rounds": 10}),
    ("DP-GD, 40 x 5 steps, lr 2", {"optimizer": "gradient_descent", "rounds": 40}),
    ("DP-GD, 100 x 5 steps, lr 2", {"optimizer": "gradient_descent", "rounds": 100}),
)


def _spec(datasets: list[str], study_id: str, model: dict[str, Any]) -> dict[str, Any]:
    return {"study_id": study_id, "task": "dp_logreg", "contract": "census_income", "datasets": datasets,
            "privacy": {"epsilon": 1.0, "delta": 1e-6},
            "model": {"outcome": OUTCOME, "features": list(FEATURES), **model}}


def _accuracy(frame: pd.DataFrame, doc: dict[str, Any], params: np.ndarray, registry: ContractCatalog) -> float:
    spec = parse_spec(doc)
    contract = registry.get("census_income")
    plan = plan_study(spec, contract)
    assert spec.model is not None and plan.model is not None
    design = encode(frame, pd.Series(np.arange(len(frame))), spec.model, contract, plan.model)
    return float((((design.x @ params[0]) > 0).astype(np.int64) == design.y).mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", default="3,5")
    parser.add_argument("--quick", action="store_true", help="skip DP-GD with 100 rounds")
    args = parser.parse_args()
    chosen = [c for c in CONFIGURATIONS if not (args.quick and c[1].get("rounds") == 100)]
    census = make_census(seed=0)
    lines, found = [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        contracts = root / "contracts"
        contracts.mkdir()
        (contracts / "census_income.yaml").write_text(TEAM_CONTRACT)
        registry = ContractCatalog([contracts])
        reference = _spec(["x/census_income"], "reference", {"optimizer": "newton"})
        plan = plan_study(parse_spec(reference), registry.get("census_income"))
        assert plan.model is not None
        train = encode(census.train, pd.Series(np.arange(len(census.train))), parse_spec(reference).model,  # type: ignore[arg-type]
                       registry.get("census_income"), plan.model)
        test = encode(census.test, pd.Series(np.arange(len(census.test))), parse_spec(reference).model,  # type: ignore[arg-type]
                      registry.get("census_income"), plan.model)
        sklearn = float((LogisticRegression(max_iter=5000).fit(train.x[:, :-1], train.y).predict(test.x[:, :-1])
                         == test.y).mean())
        target = sklearn - 0.01
        lines.append(f"census-like data: {len(census.train):,} training rows, {len(census.test):,} held out; "
                     f"scikit-learn pooled, non-private: accuracy {sklearn:.4f}; target {target:.4f}")
        for k in (int(n) for n in args.nodes.split(",")):
            municipalities = NAMES[:k]
            silos = write_silos(census.train, root / f"data-{k}", municipalities)
            datasets = [f"{m}/census_income" for m in municipalities]
            nodes = [NodeSetup(d, "census_income", silos[d.split("/")[0]], epsilon_cap=50.0,
                               contracts_dirs=(contracts,)) for d in datasets]
            lines.append(f"{k} nodes ({', '.join(str(len(pd.read_parquet(p))) for p in silos.values())} rows):")
            with LocalFederation(root / f"fed-{k}", nodes) as fed:
                warm = root / "warm.json"
                warm.write_text(json.dumps(_spec(datasets, f"warm-{k}", {"optimizer": "newton", "rounds": 1})))
                fed.run(warm)
                for n, (label, model) in enumerate(chosen):
                    doc = _spec(datasets, f"bench-{k}-{n}-{time.time_ns()}", model)
                    path = root / "spec.json"
                    path.write_text(json.dumps(doc))
                    started = time.perf_counter()
                    result = fed.run(path, timeout=3600)
                    seconds = time.perf_counter() - started
                    assert result["status"] == "completed", result.get("error")
                    accuracy = _accuracy(census.test, doc, np.asarray(result["outputs"]["parameters"]), registry)
                    rounds = len(result["rounds"])
                    found.append({"nodes": k, "configuration": label, "rounds": rounds, "seconds": round(seconds, 1),
                                  "accuracy": round(accuracy, 4), "reached": accuracy >= target,
                                  "epsilon": result["privacy"]["epsilon"]})
                    lines.append(f"  {label:<46} {rounds:4d} rounds {seconds:7.1f} s  accuracy {accuracy:.4f}"
                                 f"  {'reaches' if accuracy >= target else 'misses'} the target")
    print("\n".join(lines))
    print(json.dumps(found))


if __name__ == "__main__":
    main()
