from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from common.errors import UsageError
from federation.pki import make_federation_certs, make_node_keys


def test_server_certificate_is_signed_by_the_ca_for_the_hosts(tmp_path: Path) -> None:
    certs = make_federation_certs(tmp_path, ["127.0.0.1", "superlink.example"])
    ca = x509.load_pem_x509_certificate(certs.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(certs.server_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert "superlink.example" in names.get_values_for_type(x509.DNSName)
    assert stat.S_IMODE(certs.server_key.stat().st_mode) == 0o600
    with pytest.raises(UsageError, match="exists already"):
        make_federation_certs(tmp_path, ["127.0.0.1"])


def test_node_keys_are_openssh_ec_keys_kept_private(tmp_path: Path) -> None:
    keys = make_node_keys(tmp_path)
    private = serialization.load_ssh_private_key(keys.private_key.read_bytes(), password=None)
    public = serialization.load_ssh_public_key(keys.public_key.read_bytes())
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert public.public_numbers() == private.public_key().public_numbers()  # type: ignore[union-attr]
    assert stat.S_IMODE(keys.private_key.stat().st_mode) == 0o600
