"""A whole federation on this machine: a SuperLink and one SuperNode per silo, as real processes.

The local deployment behind ``tillit federation run``, ``tillit demo``, the benchmarks and the
integration tests. TLS and SuperNode authentication are on unless ``insecure`` is asked for explicitly.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from common.errors import ProcessFailed, UsageError
from federation.launch import CONNECTION, LaunchTarget, flwr, result_path, submit_run, write_connection
from federation.pki import make_federation_certs, make_node_keys
from federation.processes import FlowerProcess, flower_env, free_port, wait_for_port
from federation.signing import SigningKey, make_signing_key, sign_spec
from federation.spec import load_spec
from nodes.agent import NodeAgent
from nodes.config import (
    BudgetSection, CoordinatorSection, FederationSection, NodeConfig, NodeSection, load_node_config, write_node_config,
)
from nodes.supernode import supernode_command

__all__ = ["LocalFederation", "NodeSetup", "node_config"]


@dataclass(frozen=True)
class NodeSetup:
    dataset: str
    contract: str
    data: Path
    epsilon_cap: float = 3.0
    delta: float = 1e-6
    #: directories of contracts a team wrote itself (YAML/JSON), besides the built-in ones
    contracts_dirs: tuple[Path, ...] = ()


def node_config(setup: NodeSetup, node_dir: Path, superlink: str, root_ca: Path | None, port: int,
                coordinator_key: Path, insecure: bool = False) -> NodeConfig:
    """The config of a node on this machine: its state in ``node_dir/state``, everything else from ``setup``."""
    return NodeConfig(
        node=NodeSection(dataset=setup.dataset, contract=setup.contract, data=setup.data.resolve(),
                         state_dir=(node_dir / "state").resolve(),
                         contracts_dirs=tuple(d.resolve() for d in setup.contracts_dirs)),
        federation=FederationSection(superlink=superlink, root_certificates=root_ca, port=port, insecure=insecure),
        budget=BudgetSection(epsilon=setup.epsilon_cap, delta=setup.delta),
        coordinator=CoordinatorSection(public_key=coordinator_key.resolve()))


@dataclass
class LocalFederation:
    """A SuperLink and its SuperNodes on loopback.

    Nodes trust ``coordinator_key`` (a public key) for study signatures. Without one, the
    federation makes its own signing key and :meth:`run` signs unsigned specs with it — the
    stand-in for a coordinator when a study is run directly (``tillit federation run``).
    """

    workdir: Path
    nodes: list[NodeSetup]
    coordinator_key: Path | None = None
    insecure: bool = False
    #: how often the ServerApp polls for replies, and stock SuperNodes' SuperExec for tasks
    poll_seconds: float = 0.05
    #: nodes keep their ClientApp warm (:mod:`nodes.flower_node`); False runs Flower's stock SuperNode
    warm_nodes: bool = True
    #: keep the SuperLink's state in an SQLite file (survives a SuperLink restart; costs ~1 s a round
    #: here in fsyncs); by default it is in memory, like the short-lived federations of tests and demo
    superlink_database: bool = False
    processes: list[FlowerProcess] = field(default_factory=list)
    node_configs: dict[str, NodeConfig] = field(default_factory=dict)
    _superlink_command: list[str] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self.workdir = self.workdir.resolve()
        self.flwr_home = self.workdir / "flwr-home"
        self.results_dir = self.workdir / "results"
        self.env = flower_env(self.flwr_home)
        self.node_env = flower_env(self.flwr_home, self.poll_seconds)
        self.port = free_port()
        self.signer: SigningKey | None = None
        if self.coordinator_key is None:
            key_path = self.workdir / "signing" / "study-signing.key"
            self.signer = SigningKey.load(key_path) if key_path.exists() else make_signing_key(key_path)
            self.coordinator_key = key_path.with_suffix(".pub")

    @property
    def superlink_address(self) -> str:
        return f"127.0.0.1:{self.port}"

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
                   "--disable-runtime-dependency-installation"]
        if self.superlink_database:
            command += ["--database", str(self.workdir / "superlink.db")]
        ca = None
        if self.insecure:
            command.append("--insecure")
        else:
            certs = make_federation_certs(self.workdir / "pki", ["127.0.0.1", "localhost"], overwrite=True)
            ca = certs.ca_cert
            command += ["--ssl-ca-certfile", str(certs.ca_cert), "--ssl-certfile", str(certs.server_cert),
                        "--ssl-keyfile", str(certs.server_key), "--enable-supernode-auth"]
        self._superlink_command = command
        link = FlowerProcess.start("superlink", command, self.env, self.workdir / "logs" / "superlink.log", self.workdir)
        self.processes.append(link)
        wait_for_port(self.port, 60, link.process)
        write_connection(self.flwr_home, superlink, ca)
        # each node's config, keys and registration are independent (a `flwr` call of ~2 s each): in parallel
        ports: list[int] = []
        while len(ports) < len(self.nodes):
            port = free_port()
            if port not in ports and port != self.port:
                ports.append(port)
        with ThreadPoolExecutor(max_workers=4) as pool:
            configs = list(pool.map(lambda setup, port: self._prepare_node(setup, port, superlink, ca),
                                    self.nodes, ports))
        for setup, config in zip(self.nodes, configs):
            name = setup.dataset.replace("/", "-")
            node = FlowerProcess.start(name, supernode_command(config, self.warm_nodes), self.node_env,
                                       self.workdir / "logs" / f"{name}.log", self.workdir)
            self.processes.append(node)
            self.node_configs[setup.dataset] = config
        for node, config in zip(self.processes[1:], configs):
            wait_for_port(config.federation.port, 60, node.process)

    def _prepare_node(self, setup: NodeSetup, port: int, superlink: str, ca: Path | None) -> NodeConfig:
        """Write the node's config, initialise its state, make and register its SuperNode key."""
        name = setup.dataset.replace("/", "-")
        assert self.coordinator_key is not None
        node_dir = self.workdir / "nodes" / name
        path = write_node_config(node_dir / "node.toml", node_config(setup, node_dir, superlink, ca, port,
                                                                     self.coordinator_key, self.insecure))
        config = load_node_config(path)
        NodeAgent(config).initialise()
        # the node's identity key: SuperNode authentication, and the signature on its cross-sector study keys
        if not (config.key_dir / "supernode").exists():
            make_node_keys(config.key_dir, "supernode")
        if not self.insecure:
            self._flwr(["supernode", "register", str(config.key_dir / "supernode.pub"), CONNECTION])
        return config

    def _flwr(self, args: list[str], timeout: float = 120) -> str:
        return flwr(args, self.env, self.workdir, timeout)

    def run(self, spec_path: Path, timeout: float = 1800, server_poll_seconds: float | None = None,
            round_seconds: float = 300.0) -> dict[str, Any]:
        """Submit the study with ``flwr run`` and wait for the ServerApp's result JSON (a node that takes longer
        than ``round_seconds`` to answer a message counts as lost; the whole run may take ``timeout``)."""
        spec = load_spec(spec_path)
        if spec.signature is None and self.signer is not None:
            if spec.cross_sector is not None and not spec.cross_sector.participants:
                spec = spec.model_copy(update={"cross_sector": spec.cross_sector.model_copy(
                    update={"participants": self.identity_keys(spec.datasets)})})
            spec_path = self.workdir / "specs" / f"{spec.study_id}.json"
            spec_path.parent.mkdir(parents=True, exist_ok=True)
            spec_path.write_text(sign_spec(spec, self.signer).model_dump_json(indent=1), encoding="utf-8")
        poll = self.poll_seconds if server_poll_seconds is None else server_poll_seconds
        dirs = sorted({d.resolve() for setup in self.nodes for d in setup.contracts_dirs})
        run_id = submit_run(self.launch_target, spec_path, poll, tuple(dirs), round_seconds)
        path = result_path(self.results_dir, run_id)
        deadline = time.monotonic() + timeout
        while not path.exists():
            if time.monotonic() > deadline:
                raise ProcessFailed(f"run {run_id} wrote no result within {timeout:.0f} s; see {self.workdir / 'logs'}")
            if self.processes and self.processes[0].process.poll() is not None:
                raise ProcessFailed(f"the SuperLink stopped during run {run_id}; see {self.workdir / 'logs'}")
            time.sleep(0.1)
        result: dict[str, Any] = json.loads(path.read_text())
        result["result_path"] = str(path)
        return result

    def identity_keys(self, datasets: tuple[str, ...]) -> dict[str, str]:
        """Each node's identity public key (OpenSSH), as a coordinator lists them in a cross-sector spec."""
        missing = [d for d in datasets if d not in self.node_configs]
        if missing:
            raise UsageError(f"no node of this federation holds {', '.join(missing)}")
        return {d: (self.node_configs[d].key_dir / "supernode.pub").read_text().strip() for d in datasets}

    @property
    def launch_target(self) -> LaunchTarget:
        """Where and how to submit runs to this federation (also what a coordinator is given)."""
        return LaunchTarget(flwr_home=self.flwr_home, results_dir=self.results_dir, env=self.env,
                            workdir=self.workdir)

    def restart_superlink(self) -> None:
        """Stop the SuperLink by PID and start it again on the same port (fault-injection tests): with its state
        in memory the new one knows none of the old one's runs; with ``superlink_database`` it keeps them, but not
        their ServerApps."""
        old = self.processes[0]
        old.stop()
        link = FlowerProcess.start("superlink", self._superlink_command, self.env,
                                   self.workdir / "logs" / "superlink-restarted.log", self.workdir)
        self.processes[0] = link
        wait_for_port(self.port, 60, link.process)

    def node_process(self, dataset: str) -> FlowerProcess:
        """The SuperNode process of one dataset (fault-injection tests and benchmarks stop it by PID)."""
        name = dataset.replace("/", "-")
        return next(p for p in self.processes if p.name == name)

    def all_pids(self) -> list[int]:
        return [pid for p in self.processes for pid in p.all_pids()]

    def stop(self) -> None:
        # nodes first (with their superexec and ClientApp children), the SuperLink last
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

