"""A whole federation on this machine: a SuperLink and one SuperNode per silo, as real processes.

Used by ``tillit federation run`` (and later the demo and the coordinator's embedded mode). TLS and
SuperNode authentication are on unless ``insecure`` is asked for explicitly.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from federation.pki import make_federation_certs, make_node_keys
from federation.processes import FlowerProcess, flower_env, free_port, wait_for_port
from nodes.agent import NodeAgent
from nodes.config import NodeConfig, load_node_config
from nodes.supernode import supernode_command
from tillit.errors import TillitError

__all__ = ["LocalFederation", "NodeSetup", "write_node_config"]

APP_DIR = Path(__file__).resolve().parent / "flower_app"
CONNECTION = "tillit"


@dataclass(frozen=True)
class NodeSetup:
    dataset: str
    contract: str
    data: Path
    epsilon_cap: float = 3.0
    delta: float = 1e-6


def write_node_config(path: Path, setup: NodeSetup, superlink: str, root_ca: Path | None, port: int,
                      insecure: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ca = f'root_certificates = "{root_ca}"\n' if root_ca is not None else ""
    path.write_text(
        f'[node]\ndataset = "{setup.dataset}"\ncontract = "{setup.contract}"\ndata = "{setup.data.resolve()}"\n'
        f'state_dir = "{(path.parent / "state").resolve()}"\n\n'
        f'[federation]\nsuperlink = "{superlink}"\n{ca}port = {port}\ninsecure = {str(insecure).lower()}\n\n'
        f"[budget]\nepsilon = {setup.epsilon_cap}\ndelta = {setup.delta}\n", encoding="utf-8")
    return path


@dataclass
class LocalFederation:
    workdir: Path
    nodes: list[NodeSetup]
    insecure: bool = False
    poll_seconds: float = 0.05
    timing: bool = False
    processes: list[FlowerProcess] = field(default_factory=list)
    node_configs: dict[str, NodeConfig] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.workdir = self.workdir.resolve()
        self.flwr_home = self.workdir / "flwr-home"
        self.results_dir = self.workdir / "results"
        self.env = flower_env(self.flwr_home, self.poll_seconds)
        self.port = free_port()

    def __enter__(self) -> LocalFederation:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        self.flwr_home.mkdir(parents=True, exist_ok=True)
        superlink = f"127.0.0.1:{self.port}"
        command = ["flower-superlink", "--host", "127.0.0.1", "--port", str(self.port),
                   "--disable-runtime-dependency-installation",
                   "--database", str(self.workdir / "superlink.db")]
        ca = None
        if self.insecure:
            command.append("--insecure")
        else:
            certs = make_federation_certs(self.workdir / "pki", ["127.0.0.1", "localhost"], overwrite=True)
            ca = certs.ca_cert
            command += ["--ssl-ca-certfile", str(certs.ca_cert), "--ssl-certfile", str(certs.server_cert),
                        "--ssl-keyfile", str(certs.server_key), "--enable-supernode-auth"]
        link = FlowerProcess.start("superlink", command, self.env, self.workdir / "logs" / "superlink.log", self.workdir)
        self.processes.append(link)
        wait_for_port(self.port, 60, link.process)
        (self.flwr_home / "config.toml").write_text(
            f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]\naddress = "{superlink}"\n'
            + (f'root-certificates = "{ca}"\n' if ca else "insecure = true\n"), encoding="utf-8")
        for setup in self.nodes:
            name = setup.dataset.replace("/", "-")
            path = write_node_config(self.workdir / "nodes" / name / "node.toml", setup, superlink, ca,
                                     free_port(), self.insecure)
            config = load_node_config(path)
            NodeAgent(config).initialise()
            if not self.insecure:
                if not (config.key_dir / "supernode").exists():
                    make_node_keys(config.key_dir, "supernode")
                self._flwr(["supernode", "register", str(config.key_dir / "supernode.pub"), CONNECTION])
            node = FlowerProcess.start(name, supernode_command(config, self.timing), self.env,
                                       self.workdir / "logs" / f"{name}.log", self.workdir)
            self.processes.append(node)
            self.node_configs[setup.dataset] = config
            wait_for_port(config.federation.port, 60, node.process)

    def _flwr(self, args: list[str], timeout: float = 120) -> str:
        done = subprocess.run(["flwr", *args], env=self.env, capture_output=True, text=True, timeout=timeout,
                              cwd=self.workdir, check=False)
        if done.returncode != 0:
            raise TillitError(f"flwr {args[0]} failed: {done.stdout.strip().splitlines()[-1:]}")
        return done.stdout

    def run(self, spec_path: Path, timeout: float = 1800, server_poll_seconds: float | None = None) -> dict[str, Any]:
        """Submit the study with ``flwr run`` and wait for the ServerApp's result JSON."""
        poll = self.poll_seconds if server_poll_seconds is None else server_poll_seconds
        config = f"spec='{spec_path.resolve()}' results-dir='{self.results_dir}' poll-seconds={poll}"
        out = self._flwr(["run", str(APP_DIR), CONNECTION, "--run-config", config, "--format", "json"])
        run_id = _run_id(out)
        path = self.results_dir / str(run_id) / "result.json"
        deadline = time.monotonic() + timeout
        while not path.exists():
            if time.monotonic() > deadline:
                raise TillitError(f"run {run_id} wrote no result within {timeout:.0f} s; see {self.workdir / 'logs'}")
            if self.processes and self.processes[0].process.poll() is not None:
                raise TillitError(f"the SuperLink stopped during run {run_id}; see {self.workdir / 'logs'}")
            time.sleep(0.1)
        result: dict[str, Any] = json.loads(path.read_text())
        result["result_path"] = str(path)
        return result

    def all_pids(self) -> list[int]:
        return [pid for p in self.processes for pid in p.all_pids()]

    def stop(self) -> None:
        # nodes first (with their superexec and ClientApp children), the SuperLink last
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()


def _run_id(output: str) -> int:
    """The run id from ``flwr run --format json``: a JSON object with ``success`` and ``run-id``."""
    try:
        document = json.loads(output[output.index("{"):])
        if document.get("success") and document.get("run-id"):
            return int(document["run-id"])
    except (ValueError, json.JSONDecodeError):
        pass
    raise TillitError(f"flwr run did not start a run: {output.strip()[-200:]!r}")
