"""A real federation on loopback: a TLS SuperLink with node authentication and three SuperNodes."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from nodes.extract import pseudonymise
from nodes.ledger import NodeLedger
from nodes.secret import load_secret
from schemas import ContractCatalog
from schemas.synth import SynthConfig, synthesize
from tillit.local import LocalFederation, NodeSetup

pytestmark = pytest.mark.integration

DATASETS = ["espoo/health_care", "vantaa/health_care", "oulu/health_care"]
POOR = "oulu/health_care"   # its privacy officer set a cap that fits two epsilon-1 studies, not three


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalFederation, Path, list[int]]]:
    root = tmp_path_factory.mktemp("federation")
    synthesize(SynthConfig(out=root / "data", residents=3_000, municipalities=("espoo", "vantaa", "oulu"), seed=21))
    nodes = [NodeSetup(d, "health_care", root / "data" / d.split("/")[0] / "health_care.parquet",
                       epsilon_cap=1.6 if d == POOR else 5.0) for d in DATASETS]
    fed = LocalFederation(root / "fed", nodes)
    fed.start()
    pids = fed.all_pids()
    try:
        yield fed, root, pids
    finally:
        fed.stop()


def _spec(root: Path, study_id: str, **body: Any) -> Path:
    path = root / f"{study_id}.json"
    path.write_text(json.dumps({"study_id": study_id, "contract": "health_care", "datasets": DATASETS,
                                "privacy": {"epsilon": 1.0, "delta": 1e-6}, **body}))
    return path


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_processes_run_with_tls_and_node_authentication(federation: tuple[LocalFederation, Path, list[int]]) -> None:
    fed, _, _ = federation
    superlink, *nodes = fed.processes
    assert "--ssl-certfile" in _cmdline(superlink.pid) and "--enable-supernode-auth" in _cmdline(superlink.pid)
    assert "--insecure" not in _cmdline(superlink.pid)
    for node in nodes:
        line = _cmdline(node.pid)
        assert "--root-certificates" in line and "--auth-supernode-private-key" in line and "--insecure" not in line
    assert len(nodes) == 3


def test_dp_table_runs_to_completion(federation: tuple[LocalFederation, Path, list[int]]) -> None:
    # Execute
    fed, root, _ = federation
    result = fed.run(_spec(root, "table1", task="dp_table",
                           table={"transitions": {"time": "year", "state": "health_segment", "by": "service_status"}}))
    # Assert: the result fields DESIGN.md promises
    assert result["status"] == "completed", result.get("error")
    privacy = result["privacy"]
    assert privacy["epsilon"] <= 1.0 and privacy["delta"] == 1e-6 and privacy["rho"] > 0
    assert set(privacy["per_dataset"]) == set(DATASETS)
    assert privacy["mechanism"] == "gaussian" and privacy["noise_scale"] > 0 and privacy["steps"] == 1
    truth = json.loads((root / "data" / "truth.json").read_text())
    matrices = result["outputs"]["transition_matrices"]
    assert set(matrices) == set(truth["health"]["transition_matrices"])
    assert all(abs(sum(row) - 1) < 1e-9 for m in matrices.values() for row in m)


def test_dp_gd_model_runs_to_completion(federation: tuple[LocalFederation, Path, list[int]]) -> None:
    fed, root, _ = federation
    result = fed.run(_spec(root, "model1", task="dp_logreg", model={
        "outcome": "service_status", "positive": ["home_care", "intensive"],
        "features": ["health_segment", "primary_care_visits", "hospital_days"], "rounds": 2, "local_steps": 3}))
    assert result["status"] == "completed", result.get("error")
    privacy = result["privacy"]
    assert privacy["steps"] == 6 and privacy["clipping_norm"] == 1.0 and privacy["noise_multiplier"] > 0
    outputs = result["outputs"]
    assert outputs["kind"] == "logistic_regression"
    assert set(outputs["coefficients"]["positive"]) == {"health_segment", "primary_care_visits", "hospital_days",
                                                        "(intercept)"}
    assert len(result["rounds"]) == 2 and all(r["bytes_received"] > 0 for r in result["rounds"])


def test_an_exhausted_node_refuses_and_no_other_ledger_is_charged(
        federation: tuple[LocalFederation, Path, list[int]]) -> None:
    # Prepare: every node has paid for two epsilon-1 studies; the poor node cannot pay for a third
    fed, root, _ = federation
    before = {ds: NodeLedger(c.ledger_path).charges() for ds, c in fed.node_configs.items()}
    # Execute
    result = fed.run(_spec(root, "table2", task="dp_table", table={"group_by": ["service_status"]}))
    # Assert
    assert result["status"] == "refused"
    assert POOR in result["error"]["detail"] and "local budget" in result["error"]["detail"]
    assert [r["code"] for r in result["refusals"]] == [4201]
    after = {ds: NodeLedger(c.ledger_path).charges() for ds, c in fed.node_configs.items()}
    assert after == before
    assert not any(study == "table2" for charges in after.values() for study, *_ in charges)


def test_marker_values_never_leave_their_node(federation: tuple[LocalFederation, Path, list[int]]) -> None:
    # Prepare: espoo's raw identity codes and the pseudonyms its node computes from them
    fed, root, _ = federation
    config = fed.node_configs["espoo/health_care"]
    raw = pd.read_parquet(config.node.data)
    contract = ContractCatalog().get("health_care")
    hashed, _ = pseudonymise(raw, contract, load_secret(config.secret_path).pseudonym_key)
    markers = {*raw["person_id"].unique()[:2000], *hashed["person_id"].dropna().unique()[:2000]}
    needles = [m.encode() for m in markers]
    # Execute: every file the federation wrote outside espoo's own state directory (and the extracts)
    own = config.state_dir.resolve()
    leaks = []
    for path in (root / "fed").rglob("*"):
        if path.is_file() and own not in path.resolve().parents:
            blob = path.read_bytes()
            leaks += [f"{path.name}" for n in needles if n in blob][:1]
    # Assert
    assert leaks == []


def test_nodes_run_only_the_tillit_app_whatever_a_flower_app_bundle_names(
        federation: tuple[LocalFederation, Path, list[int]]) -> None:
    # Prepare: a Flower app bundle under another name (same components) submitted to the same SuperLink
    import shutil
    import time

    from federation.launch import APP_DIR, CONNECTION, flwr, result_path, run_id_from_output
    from federation.signing import sign_spec
    from federation.spec import load_spec

    fed, root, _ = federation
    other = root / "other-app"
    shutil.copytree(APP_DIR, other, dirs_exist_ok=True)
    pyproject = other / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('name = "tillit-study"', 'name = "other-app"'))
    assert fed.signer is not None
    spec_path = root / "other-signed.json"
    spec = load_spec(_spec(root, "other1", task="dp_table", table={"group_by": ["service_status"]}))
    spec_path.write_text(sign_spec(spec, fed.signer).model_dump_json())
    before = {ds: NodeLedger(c.ledger_path).charges() for ds, c in fed.node_configs.items()}
    config = f"spec='{spec_path}' results-dir='{fed.results_dir}' poll-seconds=0.05"
    # Execute
    run_id = run_id_from_output(flwr(["run", str(other), CONNECTION, "--run-config", config, "--format", "json"],
                                     fed.env, fed.workdir))
    path = result_path(fed.results_dir, run_id)
    deadline = time.monotonic() + 300
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    result = json.loads(path.read_text())
    # Assert: every node declined to run it, and none was charged
    assert result["status"] == "refused"
    assert len(result["refusals"]) == len(DATASETS)
    assert all("runs only tillit/tillit-study, not tillit/other-app" in r["detail"] for r in result["refusals"])
    assert {ds: NodeLedger(c.ledger_path).charges() for ds, c in fed.node_configs.items()} == before


def test_nodes_answer_every_message_from_their_own_warm_process(
        federation: tuple[LocalFederation, Path, list[int]]) -> None:
    # Prepare: the studies above sent every node several messages
    from federation.processes import _descendants

    fed, _, _ = federation
    _, *nodes = fed.processes
    # Execute
    children = {node.name: _descendants(node.pid) for node in nodes}
    logs = {node.name: (fed.workdir / "logs" / f"{node.name}.log").read_text() for node in nodes}
    # Assert: no flower-superexec or per-message flwr-clientapp process, and the in-process runner served them
    assert children == {node.name: [] for node in nodes}
    for name, log in logs.items():
        assert "serving ClientApp tasks in-process" in log, name
        assert log.count("Sending: query message") >= 3, name


def test_every_process_is_stopped_by_pid(federation: tuple[LocalFederation, Path, list[int]]) -> None:
    fed, _, pids = federation
    running = fed.all_pids()
    assert len(running) >= 4 and set(pids) <= set(running)
    # Execute
    fed.stop()
    # Assert: gone, or an exited zombie waiting for its (non-reaping) parent
    alive = []
    for pid in running:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state != "Z":
            alive.append(pid)
    assert alive == []
