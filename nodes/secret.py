"""The node's secret: the key material behind its pseudonyms. It never leaves the node or a log."""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import UsageError

__all__ = ["MIN_SECRET_BYTES", "NodeSecret", "create_secret", "ephemeral_secret", "load_secret"]

MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class NodeSecret:
    """Key material and where it came from. ``repr`` never shows the material."""

    material: bytes = field(repr=False)
    source: str

    @property
    def pseudonym_key(self) -> bytes:
        """A 32-byte key for the keyed hash, separated by domain from any other use of the secret."""
        return hashlib.blake2b(self.material, digest_size=32, person=b"tillit-pseudonym").digest()

    @property
    def key_id(self) -> str:
        """A short public fingerprint, so operators can tell whether two runs used the same key."""
        return hashlib.sha256(self.pseudonym_key).hexdigest()[:12]


def load_secret(path: Path) -> NodeSecret:
    if not path.is_file():
        raise UsageError(f"node secret file {path} does not exist; create one with 'tillit node init-secret'")
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsageError(f"node secret file {path} is readable by others; run: chmod 600 {path}")
    material = path.read_bytes().strip()
    if len(material) < MIN_SECRET_BYTES:
        raise UsageError(f"node secret file {path} holds fewer than {MIN_SECRET_BYTES} bytes")
    return NodeSecret(material=material, source="node-secret")


def create_secret(path: Path) -> NodeSecret:
    """Write a new random secret readable only by its owner; refuse to overwrite one."""
    if path.exists():
        raise UsageError(f"{path} exists already; a node keeps its secret (pseudonyms depend on it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    material = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(material)
    return NodeSecret(material=material, source="node-secret")


def ephemeral_secret() -> NodeSecret:
    """A throw-away key for a one-off check: pseudonyms are consistent within one run only."""
    return NodeSecret(material=secrets.token_bytes(MIN_SECRET_BYTES), source="ephemeral")
