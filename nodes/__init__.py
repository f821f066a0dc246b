"""The node beside a sector's data: config, extract, pseudonyms, its own ledger, its SuperNode."""

from nodes.agent import NodeAgent
from nodes.config import NodeConfig, load_node_config, write_node_config

__all__ = ["NodeAgent", "NodeConfig", "load_node_config", "write_node_config"]
