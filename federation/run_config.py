"""A study run's configuration: what the launcher passes to ``flwr run`` and the ServerApp reads back.

One typed object on both sides, so no key is spelled twice and nothing deep inside the ServerApp
reads a string-keyed dict. Flower carries it as ``--run-config`` (TOML-like ``key=value`` pairs);
:meth:`RunConfig.flwr_argument` writes them and :meth:`RunConfig.from_flower` parses and checks them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common.errors import UsageError, describe_validation_error

__all__ = ["DEFAULT_POLL_SECONDS", "RunConfig"]

#: how often the ServerApp polls for replies (and a stock SuperNode's SuperExec for tasks)
DEFAULT_POLL_SECONDS = 0.05


class RunConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: the signed study spec (JSON file) the ServerApp runs
    spec: Path
    #: where the ServerApp writes ``<run_id>/result.json`` and ``progress.json``
    results_dir: Path
    #: directories of contracts a team wrote itself, besides the built-in ones
    contracts_dirs: tuple[Path, ...] = ()
    #: how long the ServerApp waits for the study's nodes to connect
    wait_seconds: float = Field(default=60.0, gt=0, le=3600)
    poll_seconds: float = Field(default=DEFAULT_POLL_SECONDS, gt=0, le=10)
    #: how long the ServerApp waits for a node's reply to any one message before the node counts as lost
    round_seconds: float = Field(default=300.0, gt=0, le=86400)

    def flwr_argument(self) -> str:
        """The value of ``flwr run --run-config``: every field, strings quoted as TOML basic strings."""
        values = {"spec": str(self.spec.resolve()), "results-dir": str(self.results_dir.resolve()),
                  "contracts-dirs": ",".join(str(d.resolve()) for d in self.contracts_dirs),
                  "wait-seconds": self.wait_seconds, "poll-seconds": self.poll_seconds,
                  "round-seconds": self.round_seconds}
        return " ".join(f"{key}={json.dumps(value)}" for key, value in values.items())

    @classmethod
    def from_flower(cls, run_config: Mapping[str, object]) -> RunConfig:
        """Parse Flower's ``context.run_config`` (the app's defaults overlaid with ``--run-config``)."""
        dirs = str(run_config.get("contracts-dirs", ""))
        try:
            return cls(spec=Path(str(run_config["spec"])), results_dir=Path(str(run_config["results-dir"])),
                       contracts_dirs=tuple(Path(d) for d in dirs.split(",") if d),
                       wait_seconds=float(str(run_config.get("wait-seconds", 60.0))),
                       poll_seconds=float(str(run_config.get("poll-seconds", DEFAULT_POLL_SECONDS))),
                       round_seconds=float(str(run_config.get("round-seconds", 300.0))))
        except KeyError as missing:
            raise UsageError(f"run config: {missing.args[0]} is missing") from None
        except ValueError as error:
            if isinstance(error, ValidationError):
                raise UsageError(f"run config: {describe_validation_error(error)}") from None
            raise UsageError("run config: a number is not a number") from None
