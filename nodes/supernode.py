"""The `flower-supernode` command for a node, from its config: TLS and node authentication on."""

from __future__ import annotations

from nodes.config import NodeConfig

__all__ = ["supernode_command"]


def supernode_command(config: NodeConfig) -> list[str]:
    fed = config.federation
    command = ["flower-supernode", "--superlink", fed.superlink, "--port", str(fed.port),
               "--node-config", f"tillit-config='{config.source}'"]
    if fed.insecure:
        command.append("--insecure")
    else:
        assert fed.root_certificates is not None
        command += ["--root-certificates", str(fed.root_certificates),
                    "--auth-supernode-private-key", str(config.key_dir / "supernode")]
    return command
