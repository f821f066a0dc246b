"""The node's ClientApp: federation's app bound to this node's :class:`~nodes.agent.NodeAgent`.

``--node-config tillit-config=<node.toml>`` names the node's config; it is parsed once and the agent
kept while the file is unchanged (a warm node answers every round of a study from the same agent).
``tillit-contracts=<dir>:<dir>`` adds contract directories given on the command line that started the node.
"""

from __future__ import annotations

import os
from pathlib import Path

from flwr.app import Context

from federation.client_app import make_client_app
from nodes.agent import NodeAgent
from nodes.config import load_node_config

__all__ = ["app", "node_service"]

_AGENTS: dict[tuple[str, int], NodeAgent] = {}


def node_service(context: Context) -> NodeAgent:
    """The agent for the config named in the SuperNode's node config (re-read when the file changes)."""
    path = Path(str(context.node_config["tillit-config"])).resolve()
    extra = tuple(Path(d) for d in str(context.node_config.get("tillit-contracts", "")).split(os.pathsep) if d)
    key = (str(path), path.stat().st_mtime_ns if path.exists() else 0)
    agent = _AGENTS.get(key)
    if agent is None:
        agent = NodeAgent(load_node_config(path, extra))
        for stale in [k for k in _AGENTS if k[0] == key[0]]:
            del _AGENTS[stale]
        _AGENTS[key] = agent
    return agent


app = make_client_app(node_service)
