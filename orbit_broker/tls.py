"""A small certificate authority for AMQPS (``orbit broker up --tls``), made with ``cryptography``.

::

    ca = CertificateAuthority.create(tls_dir)             # ca.pem + ca.key (0600)
    server = ca.issue_server("server", ["127.0.0.1", "localhost"])
    alice = ca.issue_client("alice")                      # CN=alice: the EXTERNAL login name
    url = "amqps://alice:pw@127.0.0.1:35671/orbit?" + alice.query(ca.cert)

Keys are ECDSA P-256, written with mode 0600; certificates are PEM. ``expired=True``
issues a certificate whose validity ended yesterday (for tests that must see it refused).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlencode

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_DAYS: Final = 825
CA_DAYS: Final = 3650


@dataclass(frozen=True)
class CertPair:
    """A PEM certificate and its private key on disk."""

    cert: Path
    key: Path

    def query(self, cafile: Path, *, external: bool = False) -> str:
        """URL query for aiormq: ``cafile``, ``certfile``, ``keyfile`` (+ ``auth=external``)."""
        params = {"cafile": str(cafile), "certfile": str(self.cert), "keyfile": str(self.key)}
        if external:
            params["auth"] = "external"
        return urlencode(params)

    def common_name(self) -> str:
        cert = x509.load_pem_x509_certificate(self.cert.read_bytes())
        return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)  # a reader sees the old key or the new one, never half of one


def _name(common_name: str, org: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA certificate and key in ``directory``; issues server and client certificates."""

    directory: Path
    name: str = "Orbit local CA"

    @property
    def cert(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def key(self) -> Path:
        return self.directory / "ca.key"

    @classmethod
    def create(cls, directory: Path, name: str = "Orbit local CA") -> CertificateAuthority:
        """Load the CA in ``directory``, or create it (self-signed, 10 years) when missing."""
        ca = cls(Path(directory), name)
        if ca.cert.is_file() and ca.key.is_file():
            return ca
        ca.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(name, "Orbit")
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        _write_key(ca.key, key)
        ca.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return ca

    def issue_server(
        self, stem: str = "server", hosts: Sequence[str] = ("127.0.0.1", "localhost")
    ) -> CertPair:
        """A server certificate whose SAN lists ``hosts`` (IP addresses and DNS names)."""
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        return self._issue(
            stem, hosts[0], ExtendedKeyUsageOID.SERVER_AUTH, sans=sans, days=DEFAULT_DAYS
        )

    def issue_client(
        self, user: str, *, stem: str | None = None, days: int = DEFAULT_DAYS, expired: bool = False
    ) -> CertPair:
        """A client certificate with ``CN=<user>`` (the x509/EXTERNAL login name)."""
        return self._issue(
            stem or f"client-{user}",
            user,
            ExtendedKeyUsageOID.CLIENT_AUTH,
            days=days,
            expired=expired,
        )

    def _issue(
        self,
        stem: str,
        common_name: str,
        usage: x509.ObjectIdentifier,
        *,
        sans: list[x509.GeneralName] | None = None,
        days: int,
        expired: bool = False,
    ) -> CertPair:
        ca_key = serialization.load_pem_private_key(self.key.read_bytes(), None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{self.key} is not an EC private key")
        ca_cert = x509.load_pem_x509_certificate(self.cert.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        start, end = (
            (now - dt.timedelta(days=2), now - dt.timedelta(days=1))
            if expired
            else (now - dt.timedelta(minutes=5), now + dt.timedelta(days=days))
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, "Orbit"))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        pair = CertPair(self.directory / f"{stem}.pem", self.directory / f"{stem}.key")
        _write_key(pair.key, key)
        tmp = pair.cert.with_name(f".{pair.cert.name}.tmp")
        tmp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        os.replace(tmp, pair.cert)
        return pair

    def client(self, user: str) -> CertPair:
        """The client pair of ``user``, issued now if it does not exist yet."""
        pair = CertPair(
            self.directory / f"client-{user}.pem", self.directory / f"client-{user}.key"
        )
        return pair if pair.cert.is_file() and pair.key.is_file() else self.issue_client(user)


def node_config(
    ca: CertificateAuthority,
    server: CertPair,
    *,
    host: str,
    port: int,
    plaintext: bool,
    external: bool = True,
) -> dict[str, str]:
    """``rabbitmq.conf`` lines for an AMQPS listener: TLS 1.2/1.3, ``verify_peer``,
    a client certificate required, optionally the plaintext listener off and EXTERNAL on."""
    lines = {
        "listeners.ssl.default": f"{host}:{port}",
        "ssl_options.cacertfile": str(ca.cert),
        "ssl_options.certfile": str(server.cert),
        "ssl_options.keyfile": str(server.key),
        "ssl_options.verify": "verify_peer",
        "ssl_options.fail_if_no_peer_cert": "true",
        "ssl_options.versions.1": "tlsv1.3",
        "ssl_options.versions.2": "tlsv1.2",
        "ssl_options.depth": "2",
        "auth_mechanisms.1": "PLAIN",
        "auth_mechanisms.2": "AMQPLAIN",
    }
    if external:
        lines |= {"auth_mechanisms.3": "EXTERNAL", "ssl_cert_login_from": "common_name"}
    if not plaintext:
        lines["listeners.tcp"] = "none"
    return lines


__all__ = ["CA_DAYS", "DEFAULT_DAYS", "CertPair", "CertificateAuthority", "node_config"]
