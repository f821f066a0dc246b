"""Submitting a study to a SuperLink and finding its result: what the coordinator and local runs share.

A run is submitted with ``flwr run`` through the SuperLink's Control API (address and TLS root in
``$FLWR_HOME/config.toml``); the ServerApp writes ``<results_dir>/<run_id>/result.json`` (and
``progress.json`` while it runs), which the submitter reads.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import ProcessFailed
from federation.processes import flower_env
from federation.run_config import DEFAULT_POLL_SECONDS, RunConfig

__all__ = ["APP_DIR", "CONNECTION", "LaunchTarget", "flwr", "list_runs", "progress_path", "read_json",
           "result_path", "run_id_from_output", "runs_from_output", "submit_run", "write_connection"]

APP_DIR = Path(__file__).resolve().parent / "flower_app"
#: the name of the SuperLink connection in ``$FLWR_HOME/config.toml``
CONNECTION = "tillit"


@dataclass(frozen=True)
class LaunchTarget:
    flwr_home: Path
    results_dir: Path
    env: dict[str, str]
    workdir: Path

    @classmethod
    def for_superlink(cls, home: Path, superlink: str, root_certificates: Path | None,
                      results_dir: Path) -> LaunchTarget:
        """A target that talks to ``superlink`` (HOST:PORT) with TLS unless no root certificate is given."""
        write_connection(home, superlink, root_certificates)
        return cls(flwr_home=home, results_dir=results_dir, env=flower_env(home), workdir=home)


def write_connection(flwr_home: Path, superlink: str, root_certificates: Path | None) -> None:
    flwr_home.mkdir(parents=True, exist_ok=True)
    tls = (f'root-certificates = "{root_certificates.resolve()}"\n' if root_certificates is not None
           else "insecure = true\n")
    (flwr_home / "config.toml").write_text(
        f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]\naddress = "{superlink}"\n' + tls,
        encoding="utf-8")


def flwr(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> str:
    """Run Flower's CLI; a failure is one line naming the subcommand, never a traceback."""
    try:
        done = subprocess.run(["flwr", *args], env=env, capture_output=True, text=True, timeout=timeout,
                              cwd=cwd, check=False)
    except subprocess.TimeoutExpired:
        raise ProcessFailed(f"flwr {args[0]} did not answer within {timeout:.0f} s") from None
    if done.returncode != 0:
        last = (done.stdout.strip() or done.stderr.strip()).splitlines()[-1:] or ["no output"]
        raise ProcessFailed(f"flwr {args[0]} failed: {last[0][:300]}")
    return done.stdout


def submit_run(target: LaunchTarget, spec_path: Path, poll_seconds: float = DEFAULT_POLL_SECONDS,
               contracts_dirs: tuple[Path, ...] = (), round_seconds: float = 300.0) -> int:
    config = RunConfig(spec=spec_path, results_dir=target.results_dir, contracts_dirs=contracts_dirs,
                       poll_seconds=poll_seconds, round_seconds=round_seconds)
    out = flwr(["run", str(APP_DIR), CONNECTION, "--run-config", config.flwr_argument(), "--format", "json"],
               target.env, target.workdir)
    return run_id_from_output(out)


def run_id_from_output(output: str) -> int:
    """The run id from ``flwr run --format json``: a JSON object with ``success`` and ``run-id``."""
    try:
        document = json.loads(output[output.index("{"):])
        if document.get("success") and document.get("run-id"):
            return int(document["run-id"])
    except (ValueError, json.JSONDecodeError):
        pass
    raise ProcessFailed(f"flwr run did not start a run: {output.strip()[-200:]!r}")


def list_runs(target: LaunchTarget, timeout: float = 30) -> dict[int, str]:
    """Every run the SuperLink knows, with its status (``running``, ``finished:completed``, ...), from
    ``flwr ls --format json`` through the Control API."""
    return runs_from_output(flwr(["ls", CONNECTION, "--format", "json"], target.env, target.workdir, timeout))


def runs_from_output(output: str) -> dict[int, str]:
    """Run statuses from ``flwr ls --format json``: ``{"success": true, "runs": [{"run-id", "status"}, ...]}``."""
    try:
        document = json.loads(output[output.index("{"):])
        if document.get("success") is True and isinstance(document.get("runs"), list):
            return {int(run["run-id"]): str(run["status"]) for run in document["runs"]}
        reason = str(document.get("error-message", "no runs in the answer")).strip().splitlines()[-1:]
    except (ValueError, KeyError, TypeError, json.JSONDecodeError):
        reason = [output.strip()[-200:]]
    raise ProcessFailed(f"flwr ls did not list the runs: {(reason or [''])[0][:200]!r}")


def result_path(results_dir: Path, run_id: int) -> Path:
    return results_dir / str(run_id) / "result.json"


def progress_path(results_dir: Path, run_id: int) -> Path:
    return results_dir / str(run_id) / "progress.json"


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON file written atomically by the ServerApp, or None if it is not there (yet)."""
    try:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return document
