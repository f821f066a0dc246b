"""A node's config file: what the local deployment writes is what the node reads back."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import UsageError
from nodes.config import load_node_config, write_node_config
from tillit.local import NodeSetup, node_config


def test_a_written_config_reads_back_unchanged(tmp_path: Path) -> None:
    # Prepare: awkward paths (spaces, quotes, non-ASCII) and a team's contract directory
    setup = NodeSetup("espoo/health_care", "health_care", tmp_path / "data dir" / "hälsa \"x\".parquet",
                      epsilon_cap=2.5, delta=1e-7, contracts_dirs=(tmp_path / "contracts",))
    config = node_config(setup, tmp_path / "node", "127.0.0.1:9092", tmp_path / "ca.crt", 9100,
                         tmp_path / "coordinator.pub")
    # Execute
    loaded = load_node_config(write_node_config(tmp_path / "node" / "node.toml", config))
    # Assert: equal but for where it was read from
    assert loaded.model_copy(update={"source": config.source}) == config
    assert loaded.source == (tmp_path / "node" / "node.toml").resolve()


def test_a_secure_node_without_a_ca_is_refused(tmp_path: Path) -> None:
    config = node_config(NodeSetup("espoo/health_care", "health_care", tmp_path / "x.parquet"), tmp_path,
                         "127.0.0.1:9092", None, 9100, tmp_path / "c.pub")
    with pytest.raises(UsageError, match="root_certificates is required"):
        load_node_config(write_node_config(tmp_path / "node.toml", config))
