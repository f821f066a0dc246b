"""TLS material and SuperNode keys for a federation, made with ``cryptography``.

Security is on by default: the SuperLink serves TLS with a certificate from the federation's own CA,
nodes pin that CA, and each SuperNode authenticates with an EC key pair whose public half the
federation operator registers (Flower's SuperNode authentication, OpenSSH key format).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common.errors import UsageError

__all__ = ["FederationCerts", "NodeKeys", "make_federation_certs", "make_node_keys"]

_VALIDITY = dt.timedelta(days=365)


@dataclass(frozen=True)
class FederationCerts:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


@dataclass(frozen=True)
class NodeKeys:
    private_key: Path
    public_key: Path


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tillit federation"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_federation_certs(directory: Path, hosts: list[str], *, overwrite: bool = False) -> FederationCerts:
    """A CA and a SuperLink server certificate valid for ``hosts`` (IP addresses or DNS names)."""
    directory.mkdir(parents=True, exist_ok=True)
    certs = FederationCerts(directory / "ca.crt", directory / "ca.key",
                            directory / "superlink.crt", directory / "superlink.key")
    if certs.ca_cert.exists() and not overwrite:
        raise UsageError(f"{certs.ca_cert} exists already; pass --overwrite to replace the federation's CA")
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Tillit federation CA")).issuer_name(_name("Tillit federation CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA384())
    )
    server_key = ec.generate_private_key(ec.SECP384R1())
    alt_names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0])).issuer_name(ca_cert.subject)
        .public_key(server_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA384())
    )
    pem = serialization.Encoding.PEM
    certs.ca_cert.write_bytes(ca_cert.public_bytes(pem))
    certs.server_cert.write_bytes(server_cert.public_bytes(pem))
    no_password = serialization.NoEncryption()
    for key, path in ((ca_key, certs.ca_key), (server_key, certs.server_key)):
        _write_private(path, key.private_bytes(pem, serialization.PrivateFormat.PKCS8, no_password))
    return certs


def make_node_keys(directory: Path, name: str = "supernode", *, overwrite: bool = False) -> NodeKeys:
    """An EC key pair for SuperNode authentication, in OpenSSH format (what Flower expects)."""
    directory.mkdir(parents=True, exist_ok=True)
    keys = NodeKeys(directory / name, directory / f"{name}.pub")
    if keys.private_key.exists() and not overwrite:
        raise UsageError(f"{keys.private_key} exists already; a node keeps its identity key")
    key = ec.generate_private_key(ec.SECP384R1())
    _write_private(keys.private_key, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()))
    keys.public_key.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH) + b"\n")
    return keys
