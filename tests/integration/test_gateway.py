"""The gateway with TLS on a real broker (its logic is tested on the memory broker in
``tests/local/test_gateway.py``)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .gateway_kit import GatewayProcess

pytestmark = pytest.mark.rabbit


@pytest.fixture
async def gateway(amqp_url: str, tmp_path: Path) -> AsyncIterator[GatewayProcess]:
    proc = await GatewayProcess(amqp_url, tmp_path / "gateway.log", "--ping", "0.5").start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def http(gateway: GatewayProcess, broker: Any) -> AsyncIterator[httpx.AsyncClient]:
    auth = (broker.user, broker.password)
    async with httpx.AsyncClient(base_url=gateway.base, auth=auth, timeout=30) as client:
        yield client


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A throw-away certificate for 127.0.0.1 (cryptography comes with globus-sdk)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_tls(amqp_url: str, broker: Any, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    proc = await GatewayProcess(amqp_url, tmp_path / "gateway.log", *tls).start()
    try:
        assert proc.base.startswith("https://")
        auth = (broker.user, broker.password)
        trust = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(base_url=proc.base, verify=trust, auth=auth) as http:
            assert (await http.get("/api/whoami")).json()["user"] == broker.user
            login = await http.post(
                "/api/login", json={"user": broker.user, "password": broker.password}
            )
            assert "secure" in login.headers["set-cookie"].lower()
    finally:
        proc.stop()
