"""Federated DP-GD on real Flower processes against the same training pooled in one process.

For 3 and 5 nodes (one municipality's health-care silo each) it measures:
- wall time of the federated study vs the same DP-GD (same steps, same noise) on the pooled data
  in one process — the cost of federating;
- per-round coordination overhead: a round's wall time minus one node's own compute, with
  Flower's stock SuperNode (a ClientApp process per message, 3 s idle poll) and with Tillit's warm
  nodes (:mod:`nodes.flower_node`), the SuperLink's state on disk or in memory;
- bytes per round (both directions, all nodes) against the model's size;
- with ``--requests``: the HTTP requests the SuperLink answered per message exchange, by route, read
  from its access log (Flower logs routine requests only at DEBUG, which costs a little time, so
  the timed numbers of such a run are not the ones to quote).
Run:  ``.venv/bin/python -m benchmarks.federation_dpgd [--residents N] [--rounds R] [--requests]``
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import row
from federation.privacy import plan_study
from federation.spec import parse_spec
from federation.tasks import Design, encode, local_training
from nodes.agent import RESIDENT, typed_extract
from nodes.secret import ephemeral_secret
from schemas import ContractCatalog
from schemas.synth import SynthConfig, synthesize
from tillit.local import LocalFederation, NodeSetup

NAMES = ("espoo", "vantaa", "helsinki", "turku", "oulu")
#: (label, warm nodes, SuperLink state on disk); all with Tillit's 0.05 s server and SuperExec polling
CONFIGURATIONS = (
    ("Flower's stock SuperNode, SuperLink on disk", False, True),
    ("warm nodes, SuperLink on disk", True, True),
    ("warm nodes, SuperLink in memory (default)", True, False),
)


def _spec(datasets: list[str], rounds: int) -> dict[str, object]:
    return {"study_id": f"bench-{len(datasets)}-{time.time_ns()}", "task": "dp_logreg", "contract": "health_care",
            "datasets": datasets, "privacy": {"epsilon": 1.0, "delta": 1e-6},
            "model": {"outcome": "service_status", "positive": ["home_care", "intensive"],
                      "features": ["health_segment", "primary_care_visits", "specialist_visits", "hospital_days"],
                      "rounds": rounds, "local_steps": 5, "learning_rate": 5.0}}


def _designs(root: Path, municipalities: tuple[str, ...], spec_doc: dict[str, object]) -> list[Design]:
    contract = ContractCatalog().get("health_care")
    spec = parse_spec(spec_doc)
    plan = plan_study(spec, contract)
    assert plan.model is not None and spec.model is not None
    frames = [typed_extract(root / m / "health_care.parquet", contract, ephemeral_secret().pseudonym_key)
              for m in municipalities]
    return [encode(frame, frame[RESIDENT], spec.model, contract, plan.model) for frame in frames]


def _pooled_seconds(designs: list[Design], spec_doc: dict[str, object]) -> tuple[float, float]:
    """The same DP-GD in one process on the pooled rows; and one node's compute for one round."""
    contract = ContractCatalog().get("health_care")
    spec = parse_spec(spec_doc)
    plan = plan_study(spec, contract)
    assert plan.model is not None and spec.model is not None
    offset = 0
    residents = []
    for d in designs:
        residents.append(d.resident + offset)
        offset += d.residents
    pooled = Design(x=np.vstack([d.x for d in designs]), y=np.concatenate([d.y for d in designs]),
                    resident=np.concatenate(residents), residents=offset)
    params = np.zeros((1, len(plan.model.features)))
    started = time.perf_counter()
    for _ in range(spec.model.rounds):
        params = local_training(pooled, params, spec.model, plan.model, float(offset))
    pooled_s = time.perf_counter() - started
    started = time.perf_counter()
    local_training(designs[0], params, spec.model, plan.model, float(designs[0].residents))
    return pooled_s, time.perf_counter() - started


_ACCESS = re.compile(r'"(?:POST|GET) /v1/(\S+) HTTP')


def _requests(log: Path, offset: int) -> collections.Counter[str]:
    """The routes the SuperLink answered, from its log after byte ``offset``."""
    with log.open("rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", errors="replace")
    return collections.Counter(m.group(1) for m in _ACCESS.finditer(text))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--residents", type=int, default=20_000, help="per node (municipality)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--nodes", default="3,5")
    parser.add_argument("--configurations", default=",".join(str(i) for i in range(len(CONFIGURATIONS))),
                        help="which of " + "; ".join(f"{i}: {c[0]}" for i, c in enumerate(CONFIGURATIONS)))
    parser.add_argument("--requests", action="store_true",
                        help="count the SuperLink's requests per exchange (its log at DEBUG)")
    args = parser.parse_args()
    chosen = [CONFIGURATIONS[int(i)] for i in args.configurations.split(",")]
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        synthesize(SynthConfig(out=root / "data", residents=args.residents, municipalities=NAMES, seed=3))
        for k in (int(n) for n in args.nodes.split(",")):
            municipalities = NAMES[:k]
            datasets = [f"{m}/health_care" for m in municipalities]
            nodes = [NodeSetup(d, "health_care", root / "data" / d.split("/")[0] / "health_care.parquet", 50.0)
                     for d in datasets]
            doc = _spec(datasets, args.rounds)
            pooled_s, node_round_s = _pooled_seconds(_designs(root / "data", municipalities, doc), doc)
            runs = {}
            counts: dict[str, collections.Counter[str]] = {}
            for n, (label, warm_nodes, on_disk) in enumerate(chosen):
                fed = LocalFederation(root / f"fed-{k}-{n}", nodes, warm_nodes=warm_nodes,
                                      superlink_database=on_disk)
                if args.requests:
                    fed.env["FLWR_LOG_LEVEL"] = "DEBUG"   # the SuperLink's and its ServerApp's; not the nodes'
                log = fed.workdir / "logs" / "superlink.log"
                with fed:
                    first = dict(doc, study_id=f"first-{k}-{n}", model={**doc["model"], "rounds": 1})  # type: ignore[dict-item]
                    (root / "first.json").write_text(json.dumps(first))
                    fed.run(root / "first.json")  # validation + caches
                    spec_doc = dict(doc, study_id=f"{doc['study_id']}-{n}")
                    (root / "spec.json").write_text(json.dumps(spec_doc))
                    offset = log.stat().st_size
                    started = time.perf_counter()
                    result = fed.run(root / "spec.json")
                    runs[label] = (time.perf_counter() - started, result)
                    if args.requests:
                        counts[label] = _requests(log, offset)
            lines.append(f"{k} nodes x {args.residents:,} residents, {args.rounds} rounds x 5 local steps:")
            lines.append(row("same DP-GD pooled in one process (baseline)", pooled_s))
            for label, (seconds, result) in runs.items():
                per_round = [r["seconds"] for r in result["rounds"]]
                overhead = statistics.median(per_round) - node_round_s
                lines.append(row(f"federated, {label} (flwr run to result)", seconds, pooled_s))
                lines.append(f"      median round {statistics.median(per_round):.2f} s; node compute "
                             f"{node_round_s:.2f} s; coordination overhead {overhead:.2f} s per round")
                if label in counts:   # prepare, the training rounds, evaluation: one exchange each
                    exchanges = len(per_round) + 2
                    total = sum(counts[label].values())
                    lines.append(f"      SuperLink requests per exchange: {total / exchanges:.1f} (study total "
                                 f"{total}: " + ", ".join(f"{route} {c}" for route, c in counts[label].most_common())
                                 + ")")
            result = runs[chosen[-1][0]][1]
            model_bytes = 8 * len(result["outputs"]["features"])
            moved = statistics.median(r["bytes_sent"] + r["bytes_received"] for r in result["rounds"])
            lines.append(f"      bytes per round, all nodes both ways: {moved:,.0f} "
                         f"(model {model_bytes} B; {moved / (2 * k * model_bytes):.1f}x model per message)")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
