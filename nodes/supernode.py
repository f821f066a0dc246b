"""The `flower-supernode` command for a node, from its config: TLS and node authentication on."""

from __future__ import annotations

from nodes.config import NodeConfig

__all__ = ["supernode_command"]


def supernode_command(config: NodeConfig, timing: bool = False) -> list[str]:
    """``timing`` makes the ClientApp log when each message was created, picked up and answered."""
    fed = config.federation
    node_config = f"tillit-config='{config.source}'"
    if timing:
        node_config += f" tillit-timing='{config.state_dir / 'timing.jsonl'}'"
    command = ["flower-supernode", "--superlink", fed.superlink, "--port", str(fed.port),
               "--node-config", node_config]
    if fed.insecure:
        command.append("--insecure")
    else:
        assert fed.root_certificates is not None
        command += ["--root-certificates", str(fed.root_certificates),
                    "--auth-supernode-private-key", str(config.key_dir / "supernode")]
    return command
