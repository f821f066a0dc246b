"""SIGTERM or SIGINT to a `tillit` command that started processes: all of them stopped by PID, children first;
no process and no listening port left."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from federation.pki import make_federation_certs
from federation.processes import free_port
from schemas.synth import SynthConfig, synthesize

pytestmark = pytest.mark.integration

TILLIT = str(Path(sys.executable).parent / "tillit")


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if stat[0] != "Z":
                children.setdefault(int(stat[1]), []).append(int(entry.name))
    found, frontier = set(), [pid]
    while frontier:
        for child in children.get(frontier.pop(), []):
            found.add(child)
            frontier.append(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.3)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _wait_for(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_federation_run_stopped_at_a_round_leaves_no_process(tmp_path: Path, signum: int) -> None:
    # Prepare: a 60-round study on three nodes, started by the CLI
    synthesize(SynthConfig(out=tmp_path / "data", residents=2_000, municipalities=("espoo", "vantaa", "oulu"), seed=3))
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({
        "study_id": "stopped", "task": "dp_logreg", "contract": "health_care",
        "datasets": ["espoo/health_care", "vantaa/health_care", "oulu/health_care"],
        "privacy": {"epsilon": 1.0, "delta": 1e-6},
        "model": {"outcome": "service_status", "positive": ["home_care"], "features": ["health_segment"],
                  "rounds": 60, "local_steps": 2}}))
    out = tmp_path / "out"
    command = subprocess.Popen([TILLIT, "federation", "run", "--spec", str(spec), "--data", str(tmp_path / "data"),
                                "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def at_round_three() -> bool:
            for progress in out.glob("results/*/progress.json"):
                try:
                    found = json.loads(progress.read_text())
                except ValueError:
                    continue
                return bool(found.get("phase") == "compute" and found.get("done", 0) >= 3)
            return False

        _wait_for(at_round_three, 240)
        started = _descendants(command.pid)
        assert len(started) >= 4, started   # SuperLink, its SuperExec/ServerApp, three SuperNodes
        # Execute
        command.send_signal(signum)
        _, err = command.communicate(timeout=120)
        # Assert: exit 128 + signal, one line, and nothing it started is left
        assert command.returncode == 128 + signum, err
        assert "every process it started was stopped" in err and "Traceback" not in err
        assert _alive(started) == set()
    finally:
        if command.poll() is None:
            command.kill()


def test_federation_superlink_stopped_leaves_no_listener(tmp_path: Path) -> None:
    # Prepare
    certs = make_federation_certs(tmp_path / "pki", ["127.0.0.1"])
    port = free_port()
    command = subprocess.Popen([TILLIT, "federation", "superlink", "--certs", str(certs.ca_cert.parent), "--state",
                                str(tmp_path / "state"), "--host", "127.0.0.1", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _listening(port), 60)
        started = _descendants(command.pid)
        # Execute
        os.kill(command.pid, signal.SIGTERM)
        _, err = command.communicate(timeout=60)
        # Assert
        assert command.returncode == 128 + signal.SIGTERM, err
        assert _alive(started) == set() and not _listening(port)
    finally:
        if command.poll() is None:
            command.kill()
