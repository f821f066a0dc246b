"""Fault injection: kill a node, the SuperLink or the coordinator, or restart the SuperLink, mid-study.

Each run starts a coordinator, a TLS SuperLink and three SuperNodes as real processes, drafts, approves
(charges) and launches a 30-round DP logistic regression through the coordinator, kills one process at a
random round, and records how the study ended, how long after the kill, whether each dataset's charge was
kept exactly once, and whether any process of the run is left afterwards. Expected: a killed node ends the
study within the round deadline naming it; a killed SuperLink takes its ServerApp with it, and the coordinator's
probe of its Control API ends the study (``superlink_lost``); a SuperLink restarted on its port has lost the run,
and the coordinator's listing of its runs ends the study (``run_lost``); a killed coordinator is restarted and
releases the result, charging nothing twice.
Run:  ``.venv/bin/python -m benchmarks.faults [--runs 20] [--seed 0]``
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from federation.processes import FlowerProcess, flower_env, free_port, wait_for_port
from federation.signing import make_signing_key
from schemas.synth import SynthConfig, synthesize
from tillit.client import CoordinatorClient
from tillit.coordinator_commands import enroll
from tillit.local import LocalFederation, NodeSetup

DATASETS = ("espoo/health_care", "vantaa/health_care", "oulu/health_care")
ROUND_SECONDS = 15.0
RUN_DEADLINE = 90.0
ROUNDS = 30
FAULTS = ("node", "superlink", "coordinator", "superlink_restart", "superlink_restart_kept")


def _kill_tree(process: FlowerProcess) -> None:
    for pid in process.all_pids()[::-1]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.process.wait(30)


def _coordinator(state: Path, fed: LocalFederation, port: int, logs: Path) -> FlowerProcess:
    command = [str(Path(sys.executable).parent / "tillit"), "coordinator", "serve", "--state", str(state),
               "--port", str(port), "--superlink", fed.superlink_address,
               "--root-certificates", str(fed.workdir / "pki" / "ca.crt")]
    env = {**flower_env(state / "home"), "TILLIT_COORDINATOR_ROUND_SECONDS": str(ROUND_SECONDS),
           "TILLIT_COORDINATOR_RUN_DEADLINE_SECONDS": str(RUN_DEADLINE), "TILLIT_COORDINATOR_WATCH_SECONDS": "0.5"}
    process = FlowerProcess.start("coordinator", command, env, logs, state.parent)
    wait_for_port(port, 60, process.process)
    return process


def one_run(root: Path, data: Path, fault: str, round_: int) -> dict[str, Any]:
    state = root / "coordinator"
    state.mkdir(mode=0o700, parents=True)
    key = make_signing_key(state / "keys" / "study-signing.key")
    del key
    nodes = [NodeSetup(d, "health_care", data / d.split("/")[0] / "health_care.parquet", epsilon_cap=5.0)
             for d in DATASETS]
    # "superlink_restart_kept": the SuperLink keeps its state in a database, as `tillit federation superlink` runs it
    fed = LocalFederation(root / "fed", nodes, coordinator_key=state / "keys" / "study-signing.pub",
                          superlink_database=fault == "superlink_restart_kept")
    port = free_port()
    coordinator: FlowerProcess | None = None
    outcome: dict[str, Any] = {"fault": fault, "round": round_}
    try:
        fed.start()
        coordinator = _coordinator(state, fed, port, root / "coordinator.log")
        url = f"http://127.0.0.1:{port}"
        admin = CoordinatorClient(url, (state / "admin.token").read_text().strip())
        analyst = CoordinatorClient(url, admin.post("/v1/principals", {"name": "analyst", "role": "analyst"})["token"])
        officer = CoordinatorClient(url, admin.post("/v1/principals", {"name": "officer", "role": "privacy_officer",
                                                                       "datasets": list(DATASETS)})["token"])
        for dataset in DATASETS:
            token = admin.post("/v1/principals", {"name": f"node-{dataset.replace('/', '-')}", "role": "node",
                                                  "datasets": [dataset]})["token"]
            enroll(CoordinatorClient(url, token), fed.node_configs[dataset])
            officer.put(f"/v1/budgets/{dataset}/2024", {"epsilon": 5.0})
        analyst.post("/v1/studies", {
            "id": "faulty", "name": "Care needs under faults", "template": "logistic_regression",
            "params": {"contract": "health_care", "municipalities": [d.split("/")[0] for d in DATASETS],
                       "outcome": "service_status", "positive": ["home_care", "intensive"],
                       "features": ["health_segment"], "rounds": ROUNDS, "local_steps": 2, "evaluate": False},
            "purpose": "Measure how studies end when a process dies", "legal_basis": "benchmark, synthetic data",
            "organisation": "Tillit", "contact": "bench@example.org", "period": "2024"})
        officer.post("/v1/studies/faulty/approve", {"reason": "benchmark"})
        analyst.post("/v1/studies/faulty/run")
        while True:   # the chosen round
            study = analyst.get("/v1/studies/faulty")
            progress = study.get("progress") or {}
            if study["status"] != "running" or (progress.get("phase") == "compute" and progress["done"] >= round_):
                break
            time.sleep(0.1)
        killed = time.monotonic()
        if fault == "node":
            _kill_tree(fed.node_process(DATASETS[1]))
        elif fault == "superlink":
            _kill_tree(fed.processes[0])
        elif fault in ("superlink_restart", "superlink_restart_kept"):
            fed.restart_superlink()
        else:
            assert coordinator is not None
            _kill_tree(coordinator)
            coordinator = _coordinator(state, fed, port, root / "coordinator-2.log")
        while True:
            study = analyst.get("/v1/studies/faulty")
            if study["status"] in ("released", "failed"):
                break
            if time.monotonic() - killed > RUN_DEADLINE + 120:
                break
            time.sleep(0.2)
        ledger = officer.get("/v1/ledger")
        charged = Counter(e["dataset"] for e in ledger["entries"] if e["study_id"] == "faulty")
        outcome.update({"status": study["status"], "code": (study.get("error") or {}).get("code"),
                        "detail": (study.get("error") or {}).get("detail", "")[:160],
                        "seconds_to_end": round(time.monotonic() - killed, 1),
                        "charges_kept_once": charged == Counter(DATASETS)})
    finally:
        if coordinator is not None:
            coordinator.stop()
        fed.stop()
    outcome["orphans"] = _orphans(root)
    return outcome


def _orphans(root: Path) -> int:
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if str(root) in cmdline and state != "Z":
                count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--faults", default=",".join(FAULTS), help="which faults, in turn (comma-separated)")
    args = parser.parse_args()
    faults = tuple(f for f in args.faults.split(",") if f)
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown or not faults:
        parser.error(f"unknown fault(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(FAULTS)}")
    rng = np.random.default_rng(args.seed)   # which fault, which round: not privacy noise
    with tempfile.TemporaryDirectory(prefix="tillit-faults-") as tmp:
        data = Path(tmp) / "data"
        synthesize(SynthConfig(out=data, residents=3_000, municipalities=tuple(d.split("/")[0] for d in DATASETS),
                               seed=args.seed))
        outcomes = []
        for run in range(args.runs):
            fault = faults[run % len(faults)]
            round_ = int(rng.integers(2, ROUNDS - 5))
            outcome = one_run(Path(tmp) / f"run-{run}", data, fault, round_)
            outcomes.append(outcome)
            print(json.dumps(outcome), flush=True)
    print(f"\n{args.runs} runs; round deadline {ROUND_SECONDS:.0f} s, run deadline {RUN_DEADLINE:.0f} s")
    for fault in FAULTS:
        found = [o for o in outcomes if o["fault"] == fault]
        if not found:
            continue
        ends = Counter(f"{o['status']}:{o['code']}" for o in found)
        seconds = [o["seconds_to_end"] for o in found]
        print(f"  {fault:<17} {len(found):>2} runs: {dict(ends)}; ended {min(seconds):.0f}-{max(seconds):.0f} s "
              f"after the kill (median {statistics.median(seconds):.0f}); charges kept once: "
              f"{sum(o['charges_kept_once'] for o in found)}/{len(found)}; orphaned processes: "
              f"{sum(o['orphans'] for o in found)}")


if __name__ == "__main__":
    main()
