"""A node's configuration file (TOML), parsed once into a typed object.

    [node]
    dataset = "espoo/health_care"        # <municipality>/<sector>: how studies name this silo
    contract = "health_care"
    data = "/srv/extracts/health_care.parquet"
    state_dir = "/var/lib/tillit/espoo-health"

    [federation]
    superlink = "superlink.example:9092"
    root_certificates = "/etc/tillit/ca.crt"
    port = 9094                            # this SuperNode's local runtime API port
    insecure = false                       # only for a throw-away trial; never with real data

    [budget]                               # set by the node's own privacy officer
    epsilon = 3.0
    delta = 1e-6

    [coordinator]                          # whose signature makes a study spec valid here
    public_key = "/etc/tillit/coordinator.pub"

Relative paths are relative to the file. Everything the node keeps — its secret, its SuperNode
key, its ledger, its validation report and caches — lives under ``state_dir``. ``[node] contracts_dirs``
lists directories of contracts the team wrote itself; ``--contracts DIR`` and ``$TILLIT_CONTRACTS_PATH``
add to them for one command (and reach the SuperNode that ``tillit node start`` runs).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from common.errors import UsageError, describe_validation_error

__all__ = ["BudgetSection", "CoordinatorSection", "FederationSection", "NodeConfig", "NodeSection",
           "load_node_config", "write_node_config"]


class NodeSection(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str = Field(pattern=r"^[a-z0-9_-]+/[a-z0-9_]+$")
    contract: str
    data: Path
    state_dir: Path
    contracts_dirs: tuple[Path, ...] = ()


class FederationSection(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    superlink: str
    root_certificates: Path | None = None
    port: int = Field(ge=1, le=65535)
    insecure: bool = False

    @field_validator("superlink")
    @classmethod
    def _address(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError("superlink must be HOST:PORT")
        return value


class BudgetSection(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    epsilon: float = Field(gt=0, le=100)
    delta: float = Field(ge=1e-12, lt=1e-2)


class CoordinatorSection(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: the coordinator's Ed25519 public key (PEM); specs not signed by it are refused (code 4303)
    public_key: Path


class NodeConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    node: NodeSection
    federation: FederationSection
    budget: BudgetSection
    coordinator: CoordinatorSection
    source: Path = Path(".")

    @property
    def state_dir(self) -> Path:
        return self.node.state_dir

    @property
    def secret_path(self) -> Path:
        return self.state_dir / "node.secret"

    @property
    def key_dir(self) -> Path:
        return self.state_dir / "keys"

    @property
    def ledger_path(self) -> Path:
        return self.state_dir / "ledger.sqlite"

    @property
    def validation_path(self) -> Path:
        return self.state_dir / "validation.json"

    @property
    def cache_dir(self) -> Path:
        return self.state_dir / "cache"

    def with_contracts(self, extra: Sequence[Path]) -> NodeConfig:
        """The config with more contract directories after its own (each directory once)."""
        dirs = tuple(dict.fromkeys([*self.node.contracts_dirs, *(Path(d).resolve() for d in extra)]))
        return self.model_copy(update={"node": self.node.model_copy(update={"contracts_dirs": dirs})})


def load_node_config(path: Path, extra_contracts: Sequence[Path] = ()) -> NodeConfig:
    """The node's config from its TOML file; ``extra_contracts`` (from ``--contracts``) follow its own directories."""
    if not path.is_file():
        raise UsageError(f"node config {path} does not exist")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        raise UsageError(f"node config {path.name} is not valid TOML") from None
    base = path.resolve().parent
    for section, key in (("node", "data"), ("node", "state_dir"), ("federation", "root_certificates"),
                         ("coordinator", "public_key")):
        value = document.get(section, {}).get(key)
        if isinstance(value, str):
            document[section][key] = str((base / value).resolve())
    dirs = document.get("node", {}).get("contracts_dirs")
    if isinstance(dirs, list):
        document["node"]["contracts_dirs"] = [str((base / d).resolve()) for d in dirs]
    try:
        config = NodeConfig.model_validate({**document, "source": str(path.resolve())})
    except ValidationError as error:
        raise UsageError(f"node config {path.name}: {describe_validation_error(error)}") from None
    if not config.federation.insecure and config.federation.root_certificates is None:
        raise UsageError(f"node config {path.name}: federation.root_certificates is required unless insecure = true")
    return config.with_contracts(extra_contracts) if extra_contracts else config


def write_node_config(path: Path, config: NodeConfig) -> Path:
    """Write ``config`` as the TOML file :func:`load_node_config` reads back (absolute paths)."""
    sections = config.model_dump(mode="json", exclude={"source"}, exclude_none=True)
    lines: list[str] = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _toml_value(value: Any) -> str:
    # JSON's strings, numbers, booleans and arrays are valid TOML values
    return json.dumps(value, ensure_ascii=False)
