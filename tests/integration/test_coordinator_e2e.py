"""The coordinator end to end, as real processes: budget set → study drafted → approved → run on real
Flower processes (TLS, node authentication, signed specs) → results → register entry; and a
coordinator killed between charge and release keeps the charge, never charges twice, and still
releases the run's result after a restart."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from federation.processes import FlowerProcess, flower_env, free_port, wait_for_port
from federation.signing import make_signing_key
from tests.conftest import Municipality
from tillit.cli import main
from tillit.local import LocalFederation, NodeSetup

pytestmark = pytest.mark.integration

DATASET = "espoo/health_care"
STUDY = ["--name", "Health-segment transitions 2019-2024", "--template", "health_transitions",
         "--purpose", "Plan health and care services for the next decade", "--legal-basis",
         "Act on the secondary use of health and social data (552/2019)", "--organisation",
         "City of Espoo, social and health services", "--contact", "planning@espoo.example", "--period", "2024"]


@dataclass
class Platform:
    fed: LocalFederation
    state: Path
    url: str
    port: int
    tokens: dict[str, Path]
    coordinator: FlowerProcess | None = None

    def start_coordinator(self) -> None:
        command = [str(Path(sys.executable).parent / "tillit"), "coordinator", "serve", "--state", str(self.state),
                   "--port", str(self.port), "--superlink", self.fed.superlink_address,
                   "--root-certificates", str(self.fed.workdir / "pki" / "ca.crt")]
        self.coordinator = FlowerProcess.start("coordinator", command, flower_env(self.state / "home"),
                                               self.state.parent / "coordinator.log", self.state.parent)
        wait_for_port(self.port, 60, self.coordinator.process)

    def cli(self, who: str | None, *args: str) -> tuple[int, str, str]:
        """Run ``tillit`` in this process as ``who``; its exit code, stdout and stderr."""
        auth = ["--token-file", str(self.tokens[who])] if who else []
        command, sub, *rest = args
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([command, sub, *rest, "--coordinator", self.url, *auth] if command != "audit" else list(args))
        return code, out.getvalue(), err.getvalue()

    def api(self, who: str, path: str) -> object:
        token = self.tokens[who].read_text().strip()
        return httpx.get(self.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30).json()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, municipality: Municipality) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("platform")
    state = root / "coordinator"
    state.mkdir(mode=0o700)
    # the coordinator's signing key exists before the nodes are configured to trust it
    make_signing_key(state / "keys" / "study-signing.key")
    fed = LocalFederation(root / "fed", [NodeSetup(DATASET, "health_care", municipality.silo("health_care"),
                                                   epsilon_cap=5.0)],
                          coordinator_key=state / "keys" / "study-signing.pub")
    port = free_port()
    platform = Platform(fed, state, f"http://127.0.0.1:{port}", port, {"admin": state / "admin.token"})
    try:
        fed.start()
        platform.start_coordinator()
        yield platform
    finally:
        if platform.coordinator is not None:
            platform.coordinator.stop()
        fed.stop()


def _token(platform: Platform, name: str, role: str, datasets: str = "") -> None:
    code, out, _ = platform.cli("admin", "principal", "add", "--name", name, "--role", role,
                                *(["--datasets", datasets] if datasets else []))
    assert code == 0
    path = platform.state.parent / f"{name}.token"
    path.write_text(out.strip().splitlines()[-1])
    platform.tokens[name] = path


def _wait_for(platform: Platform, study: str, status: str, timeout: float = 600) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = platform.api("analyst", f"/v1/studies/{study}")
        assert isinstance(found, dict)
        if found["status"] == status:
            return found
        assert found["status"] in ("approved", "launching", "running"), found
        time.sleep(0.5)
    raise AssertionError(f"{study} never became {status}")


@pytest.fixture(scope="module")
def staffed(platform: Platform) -> Platform:
    """Principals for each role, the node enrolled with its key and verdict, a budget for 2024."""
    _token(platform, "officer", "privacy_officer", DATASET)
    _token(platform, "analyst", "analyst")
    _token(platform, "node", "node", DATASET)
    node_config = platform.fed.workdir / "nodes" / "espoo-health_care" / "node.toml"
    code, out, err = platform.cli("node", "node", "enroll", "--config", str(node_config))
    assert code == 0 and "enrolled espoo/health_care" in out, err
    assert platform.cli("officer", "budget", "set", "--dataset", DATASET, "--period", "2024",
                        "--epsilon", "3")[0] == 0
    return platform


def test_budget_study_approval_run_results_and_register(staffed: Platform, municipality: Municipality,
                                                        tmp_path: Path) -> None:
    # Prepare: principals, enrolled node and budget from the fixture
    platform = staffed
    # Execute: draft → cost → approve → run → results
    code, out, err = platform.cli("analyst", "study", "create", "--id", "transitions-2024", *STUDY,
                                  "--params", json.dumps({"municipalities": ["espoo"], "epsilon": 1.0}))
    assert code == 0, err
    code, out, _ = platform.cli("officer", "study", "cost", "transitions-2024")
    assert code == 0 and DATASET in out and "remaining" in out
    code, out, err = platform.cli("officer", "study", "approve", "transitions-2024", "--reason",
                                  "within the service-planning mandate")
    assert code == 0 and "status approved" in out, err
    code, out, err = platform.cli("analyst", "study", "run", "transitions-2024", "--wait", "--timeout", "600")
    assert code == 0, err + out
    code, out, err = platform.cli("analyst", "study", "results", "transitions-2024")
    # Assert: the result, the ledger, the register, the audit chain
    assert code == 0, err
    result = json.loads(out)
    assert result["study_id"] == "transitions-2024" and result["status"] == "completed"
    matrices = result["outputs"]["transition_matrices"]
    assert set(matrices) == set(municipality.truth["health"]["transition_matrices"])
    ledger = platform.api("officer", "/v1/ledger")
    assert isinstance(ledger, dict)
    assert [(e["dataset"], e["study_id"]) for e in ledger["entries"]] == [(DATASET, "transitions-2024")]
    assert ledger["entries"][0]["rho"] == pytest.approx(result["privacy"]["per_dataset"][DATASET]["rho"], rel=1e-6)
    register = httpx.get(platform.url + "/v1/register", timeout=30).json()
    entry = next(s for s in register["studies"] if s["id"] == "transitions-2024")
    assert entry["status"] == "released" and entry["legal_basis"].startswith("Act on the secondary use")
    assert entry["privacy"][DATASET]["epsilon"] == pytest.approx(1.0, abs=1e-3)
    assert entry["human_oversight"][0]["by"] == "officer"
    page = httpx.get(platform.url + "/register", timeout=30).text
    assert "Health-segment transitions 2019-2024" in page and "<script" not in page
    code, out, _ = platform.cli(None, "audit", "verify", "--state", str(platform.state))
    assert code == 0 and "audit log intact" in out
    code, out, err = platform.cli("analyst", "study", "results", "transitions-2024", "--out",
                                  str(tmp_path / "files"))
    assert code == 0, err
    assert json.loads((tmp_path / "files" / "result.json").read_text())["study_id"] == "transitions-2024"
    assert (tmp_path / "files" / "transitions.csv").read_text().startswith("service,from,to,probability")
    report = (tmp_path / "files" / "report.html").read_text()
    assert "Health-segment transitions 2019-2024" in report and "<script" not in report


def test_a_crash_between_charge_and_release_keeps_the_charge_once(staffed: Platform) -> None:
    # Prepare: a study of its own, approved (so charged) and launched
    platform = staffed
    code, _, err = platform.cli("analyst", "study", "create", "--id", "crash-2024", *STUDY,
                                "--params", json.dumps({"municipalities": ["espoo"], "epsilon": 0.5}))
    assert code == 0, err
    assert platform.cli("officer", "study", "approve", "crash-2024", "--reason", "second look")[0] == 0
    assert platform.cli("analyst", "study", "run", "crash-2024")[0] == 0
    # Execute: kill the coordinator at once (the run takes seconds), then start it again on the same state
    assert platform.coordinator is not None
    os.kill(platform.coordinator.pid, signal.SIGKILL)
    platform.coordinator.process.wait(30)
    with sqlite3.connect(platform.state / "coordinator.sqlite") as db:
        at_crash = db.execute("SELECT status, result FROM studies WHERE id = 'crash-2024'").fetchone()
    assert at_crash == ("running", None), "the coordinator must die between the charge and the release"
    platform.start_coordinator()
    released = _wait_for(platform, "crash-2024", "released")
    # Assert: one charge for the study, kept across the crash; a second approval cannot charge again
    ledger = platform.api("officer", "/v1/ledger")
    assert isinstance(ledger, dict)
    assert [e["study_id"] for e in ledger["entries"]].count("crash-2024") == 1
    code, _, err = platform.cli("officer", "study", "approve", "crash-2024", "--reason", "again")
    assert code == 3 and "is released" in err
    assert released["finished_at"] is not None
    code, out, _ = platform.cli(None, "audit", "verify", "--state", str(platform.state))
    assert code == 0, out


def test_budget_show_lists_the_municipality_caps_an_admin_set(staffed: Platform) -> None:
    # Prepare
    platform = staffed
    code, _, err = platform.cli("admin", "budget", "cap", "--municipality", "espoo", "--period", "2031",
                                "--epsilon", "4")
    assert code == 0, err
    # Execute
    code, out, err = platform.cli("officer", "budget", "show", "--period", "2031")
    one_dataset = platform.cli("officer", "budget", "show", "--dataset", DATASET)
    # Assert: the cap, under its own heading; not shown when one dataset is asked for
    assert code == 0, err
    cap_lines = out.split("municipality cap (per resident, all silos)", 1)[1].splitlines()
    assert any(line.split()[:3] == ["espoo", "2031", "1e-06"] and line.split()[3] == "4" for line in cap_lines), out
    assert one_dataset[0] == 0 and "municipality cap" not in one_dataset[1]
