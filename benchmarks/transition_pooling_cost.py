"""The cost of not pooling: transition-matrix error when every municipality's node adds its own noise,
against one central Gaussian mechanism on the pooled counts at the same ρ per resident.

Each resident lives in one municipality, so the central release on pooled counts with the same
noise scale spends the same ρ per resident; the federated sum carries k independent noises. Both
use the node's own code path (typed extract → transition rows → cell counts) and OpenDP's
Gaussian mechanism; the error is the mean absolute error of the transition probabilities against
``truth.json``, for both server-side estimators (row by row, and ordinal shrinkage). Run:  ``.venv/bin/python -m benchmarks.transition_pooling_cost [--residents N]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from federation.privacy import gaussian_release, plan_study
from federation.results import table_outputs
from federation.templates import build_spec
from nodes.agent import typed_extract
from schemas import ContractCatalog
from schemas.synth import SynthConfig, synthesize


def _mae(found: dict[str, list[list[float]]], truth: dict[str, list[list[float]]]) -> float:
    return float(np.mean([np.abs(np.array(found[k]) - np.array(truth[k])).mean() for k in truth]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--residents", type=int, default=100_000, help="residents per municipality")
    parser.add_argument("--municipalities", default="espoo,vantaa,helsinki")
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    municipalities = tuple(args.municipalities.split(","))
    registry = ContractCatalog()
    contract = registry.get("health_care")
    specs = {estimator: build_spec("health_transitions", "pooling-cost", "2024",
                                   {"municipalities": list(municipalities), "epsilon": args.epsilon,
                                    "estimator": estimator}, registry)
             for estimator in ("raw", "ordinal_shrinkage")}
    plan = plan_study(specs["raw"], contract)
    transitions = specs["raw"].table.transitions if specs["raw"].table is not None else None
    assert plan.table is not None and transitions is not None
    from federation.tasks import cell_counts, transition_rows

    with tempfile.TemporaryDirectory() as tmp:
        result = synthesize(SynthConfig(out=Path(tmp), residents=args.residents, municipalities=municipalities,
                                        seed=3))
        truth = json.loads(result.truth_path.read_text())["health"]["transition_matrices"]
        exact = {f"{m}/health_care": cell_counts(transition_rows(typed_extract(
            Path(tmp) / m / "health_care.parquet", contract, b"k" * 32), transitions), plan.table)
            for m in municipalities}
    pooled = np.sum(list(exact.values()), axis=0)
    errors: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeats):
        releases = {"federated": {d: gaussian_release(c, plan.table.noise_scale) for d, c in exact.items()},
                    "central": {"pooled": gaussian_release(pooled, plan.table.noise_scale)}}
        for estimator, spec in specs.items():
            for name, counts in releases.items():
                found = table_outputs(spec, plan, counts)["transition_matrices"]
                errors.setdefault((estimator, name), []).append(_mae(found, truth))
    no_noise = _mae(table_outputs(specs["raw"], plan, {"pooled": pooled})["transition_matrices"], truth)
    mean = {k: float(np.mean(v)) for k, v in errors.items()}
    print(f"transition study, {len(municipalities)} municipalities x {args.residents:,} residents, "
          f"epsilon {args.epsilon} per dataset, noise sd {plan.table.noise_scale:.2f} per cell, {args.repeats} repeats")
    print(f"  MAE vs truth, exact pooled counts, row by row (sampling and messiness only): {no_noise:.4f}")
    for estimator in specs:
        central, federated = mean[(estimator, "central")], mean[(estimator, "federated")]
        print(f"  estimator {estimator}:")
        print(f"    one central Gaussian on pooled counts:        {central:.4f}")
        print(f"    federated (noise at each of {len(municipalities)} nodes):       {federated:.4f}")
        print(f"    cost of not pooling: {federated / central:.2f}x the central error")
    print(f"  ordinal shrinkage against row by row, federated: "
          f"{mean[('ordinal_shrinkage', 'federated')] / mean[('raw', 'federated')]:.2f}x the error")


if __name__ == "__main__":
    main()
