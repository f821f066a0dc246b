"""The SuperNode command for a node, from its config: TLS and node authentication on.

It runs Flower's ``flower-supernode`` through :mod:`nodes.flower_node`, which keeps the node's
ClientApp warm in the SuperNode's process instead of starting a process per message.
"""

from __future__ import annotations

import os
import sys

from nodes.config import NodeConfig

__all__ = ["supernode_command"]


def supernode_command(config: NodeConfig, warm: bool = True) -> list[str]:
    """``warm=False`` runs Flower's stock ``flower-supernode`` (a ClientApp process per message), for
    benchmarks that compare the two."""
    fed = config.federation
    node_config = f"tillit-config='{config.source}'"
    if config.node.contracts_dirs:  # the config file's own and any given with --contracts
        node_config += f" tillit-contracts='{os.pathsep.join(str(d) for d in config.node.contracts_dirs)}'"
    program = [sys.executable, "-m", "nodes.flower_node"] if warm else ["flower-supernode"]
    command = [*program, "--superlink", fed.superlink, "--port", str(fed.port),
               "--node-config", node_config]
    if fed.insecure:
        command.append("--insecure")
    else:
        assert fed.root_certificates is not None
        command += ["--root-certificates", str(fed.root_certificates),
                    "--auth-supernode-private-key", str(config.key_dir / "supernode")]
    return command
