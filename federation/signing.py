"""Ed25519 signatures on study specs: the coordinator signs an approved spec, every node verifies it.

A node refuses (code 4303) a spec that is unsigned, signed by another key, or altered after
signing — whatever the coordinator or anyone on the path says. The signature covers the spec's
canonical JSON (sorted keys, no whitespace, without the signature field itself).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from common.errors import RefusalCode, StudyRefused, UsageError
from federation.spec import StudySpec

__all__ = ["SigningKey", "load_public_key", "make_signing_key", "public_key_pem", "sign_bytes", "sign_spec",
           "verify_bytes", "verify_spec"]


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as error:
            raise UsageError(f"cannot read the signing key {path}: {type(error).__name__}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise UsageError(f"{path} is not an Ed25519 private key")
        return cls(key)


def make_signing_key(path: Path) -> SigningKey:
    """Create an Ed25519 key readable only by its owner, and its public half beside it (``.pub``)."""
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
    path.with_suffix(".pub").write_bytes(public_key_pem(key.public_key()))
    return SigningKey(key)


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read the coordinator's public key {path}: {type(error).__name__}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"{path} is not an Ed25519 public key")
    return key


def sign_bytes(key: SigningKey, data: bytes) -> str:
    return base64.b64encode(key.private.sign(data)).decode("ascii")


def verify_bytes(key: Ed25519PublicKey, data: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), data)
    except (InvalidSignature, ValueError):
        return False
    return True


def sign_spec(spec: StudySpec, key: SigningKey) -> StudySpec:
    return spec.model_copy(update={"signature": sign_bytes(key, spec.canonical_json().encode())})


def verify_spec(spec: StudySpec, key: Ed25519PublicKey, who: str) -> None:
    """Raise :class:`StudyRefused` (4303) unless ``spec`` carries the coordinator's valid signature."""
    if not spec.signature:
        raise StudyRefused(f"{who}: study {spec.study_id} is not signed by the coordinator", RefusalCode.NOT_SIGNED)
    if not verify_bytes(key, spec.canonical_json().encode(), spec.signature):
        raise StudyRefused(f"{who}: study {spec.study_id} has no valid coordinator signature "
                           "(altered after approval, or signed by another key)", RefusalCode.NOT_SIGNED)
