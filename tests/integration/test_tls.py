"""AMQPS on a private TLS-only node: verify_peer, client certificates, x509/EXTERNAL login.

The node listens for AMQPS only (plaintext listener off), requires a client certificate
signed by its CA (``fail_if_no_peer_cert``), allows TLS 1.2/1.3 and offers EXTERNAL. Each
refusal test has a positive control on the same path, so it cannot pass by accident.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import aio_pika
import pytest

from orbit_amqp.aiopika import _ClosedOnFailure
from orbit_amqp.probe import amqp_login_ok
from orbit_broker.local import LocalNode, free_port, port_in_use
from orbit_broker.management import ConnectionInfo, ManagementClient
from orbit_broker.provision import ClientSpec, EndpointSpec, Provisioner, ProvisionSpec
from orbit_broker.tls import CertificateAuthority, CertPair
from orbit_client import AsyncOrbitClient, BrokerError
from orbit_endpoint.settings import EndpointSettings
from tests.testkit.cli import Ran, orbit_sync
from tests.testkit.eventually import eventually
from tests.testkit.nodes import start_node

from .endpoints import EndpointProcess

pytestmark = [pytest.mark.rabbit, pytest.mark.slow]

VHOST = "orbit-tls"


@dataclass
class TlsWorld:
    node: LocalNode
    management: ManagementClient
    passwords: dict[str, str]

    def url(self, user: str, *, external: bool = False) -> str:
        password = None if external else self.passwords[user]
        return self.node.amqps_url(VHOST, user, password, external=external)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsWorld]:
    node = start_node(tmp_path_factory.mktemp("tls-node"), "orbit-tls", tls=True, plaintext=False)
    try:
        management = ManagementClient(node.management_url, node.username, node.password)
        prov = Provisioner(management, node.amqp_url("/"), VHOST)
        result = prov.provision_sync(
            ProvisionSpec(
                endpoints=[EndpointSpec("ep1"), EndpointSpec("ep2")],
                clients=[ClientSpec("alice", ["ep1", "ep2"])],
            )
        )
        passwords = {name: c.password for name, c in result.credentials.items()}
        management.create_user("ep2", None)  # certificate-only: EXTERNAL is its only login
        yield TlsWorld(node, management, passwords)
        management.close()
    finally:
        node.stop()


def context(ca: Path, pair: CertPair | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    if pair is not None:
        ctx.load_cert_chain(str(pair.cert), str(pair.key))
    return ctx


def login(world: TlsWorld, user: str, pair: CertPair | None) -> bool:
    node = world.node
    assert node.tls_port is not None
    ca = node.certificate_authority()
    return amqp_login_ok(
        node.host,
        node.tls_port,
        user,
        world.passwords[user],
        5.0,
        VHOST,
        ssl_context=context(ca.cert, pair),
    )


async def connections(world: TlsWorld, users: set[str]) -> list[ConnectionInfo]:
    """The users' connections once the management API lists all of them (stats lag ~1 s)."""

    def listed() -> list[ConnectionInfo] | None:
        conns = [c for c in world.management.list_connections() if c.user in users]
        return conns if {c.user for c in conns} == users else None

    return await eventually(listed, interval=0.1, what=f"connections of {users} listed")


async def test_endpoint_and_client_over_amqps(tls: TlsWorld, tmp_path: Path) -> None:
    url = tls.url("ep1")
    assert url.startswith("amqps://") and "certfile=" in url
    settings = EndpointSettings(name="ep1", url=url)
    assert tls.passwords["ep1"] not in settings.safe_url
    assert settings.safe_url.startswith("amqps://ep1:***@")
    proc = await EndpointProcess("ep1", url, tmp_path / "ep1", allowed_users=["alice"]).start()
    try:
        async with AsyncOrbitClient(url=tls.url("alice"), timeout=30) as client:
            assert (await client.call("ep1", "orbit.ping"))["endpoint"] == "ep1"
            conns = await connections(tls, {"ep1", "alice"})
        assert all(c.tls for c in conns), conns
    finally:
        await proc.stop()
    assert tls.passwords["ep1"] not in proc.log()


def test_plaintext_refused(tls: TlsWorld) -> None:
    node = tls.node
    assert node.tls_port is not None
    password = tls.passwords["alice"]
    ca = node.certificate_authority()
    # control: the same user over TLS with its certificate
    assert login(tls, "alice", ca.client("alice"))
    # no plaintext listener at all, and plain AMQP to the TLS port fails the handshake
    assert not amqp_login_ok(node.host, node.amqp_port, "alice", password, 3.0, VHOST)
    assert not amqp_login_ok(node.host, node.tls_port, "alice", password, 3.0, VHOST)


def test_missing_foreign_and_expired_client_certificates_refused(
    tls: TlsWorld, tmp_path: Path
) -> None:
    ca = tls.node.certificate_authority()
    assert login(tls, "alice", ca.client("alice"))
    other = CertificateAuthority.create(tmp_path / "other-ca", "Mallory CA")
    expired = ca.issue_client("alice", stem="alice-expired", expired=True)
    outcomes = {
        "no client certificate": login(tls, "alice", None),
        "certificate from another CA": login(tls, "alice", other.issue_client("alice")),
        "expired certificate": login(tls, "alice", expired),
    }
    print("\nTLS refusals:", outcomes)
    assert outcomes == dict.fromkeys(outcomes, False)


async def test_client_library_refuses_foreign_server(tls: TlsWorld, tmp_path: Path) -> None:
    """A client that trusts another CA does not talk to this broker (server verification)."""
    other = CertificateAuthority.create(tmp_path / "other-ca", "Mallory CA")
    good = tls.url("alice")
    pair = tls.node.certificate_authority().client("alice")
    url = good.split("?")[0] + "?" + pair.query(other.cert)
    assert url != good
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        await aio_pika.connect(url, timeout=10, connection_class=_ClosedOnFailure)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_tls_1_0_and_1_1_refused_by_the_broker(tls: TlsWorld, version: str) -> None:
    """A client forcing an old TLS version (its own security level lowered so that it really
    offers it) gets the broker's protocol_version alert; the same client on TLS 1.2 logs in."""
    ca = tls.node.certificate_authority()

    def offering(v: ssl.TLSVersion) -> ssl.SSLContext:
        ctx = context(ca.cert, ca.client("alice"))
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ctx.maximum_version = v
        return ctx

    assert tls.node.tls_port is not None
    address = (tls.node.host, tls.node.tls_port)
    old = offering(getattr(ssl.TLSVersion, version))
    with (
        pytest.raises(ssl.SSLError, match="TLSV1_ALERT_PROTOCOL_VERSION"),
        socket.create_connection(address, 5) as raw,
    ):
        old.wrap_socket(raw, server_hostname=tls.node.host)
    assert amqp_login_ok(
        tls.node.host,
        tls.node.tls_port,
        "alice",
        tls.passwords["alice"],
        5.0,
        VHOST,
        ssl_context=offering(ssl.TLSVersion.TLSv1_2),
    )


async def test_client_errors_name_the_tls_cause(tls: TlsWorld, tmp_path: Path) -> None:
    """What the Orbit client says for a wrong CA, a missing client certificate and a broker
    certificate issued for another host (a TLS stand-in with such a certificate)."""
    ca = tls.node.certificate_authority()
    good = tls.url("alice")
    base = good.split("?")[0]
    other = CertificateAuthority.create(tmp_path / "other-ca", "Mallory CA")
    wrong_ca = base + "?" + ca.client("alice").query(other.cert)
    with pytest.raises(BrokerError, match="does not verify against the CA this client trusts"):
        await AsyncOrbitClient(url=wrong_ca, timeout=10).connect()
    no_cert = f"{base}?cafile={quote(str(ca.cert), safe='')}"
    with pytest.raises(BrokerError, match="no client certificate"):
        await AsyncOrbitClient(url=no_cert, timeout=10).connect()

    elsewhere = ca.issue_server("elsewhere", ["broker.example"])
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(str(elsewhere.cert), str(elsewhere.key))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve_one() -> None:
            conn, _ = listener.accept()
            with contextlib.suppress(OSError), conn, server_ctx.wrap_socket(conn, server_side=True):
                pass

        stand_in = threading.Thread(target=serve_one, daemon=True)
        stand_in.start()
        mismatched = good.replace(f":{tls.node.tls_port}/", f":{port}/")
        with pytest.raises(BrokerError, match=r"not valid for '127\.0\.0\.1'"):
            await AsyncOrbitClient(url=mismatched, timeout=10).connect()
        stand_in.join(5)


def served_serial(world: TlsWorld) -> int:
    """The serial of the certificate the TLS listener presents to a new connection."""
    from cryptography import x509

    ca = world.node.certificate_authority()
    assert world.node.tls_port is not None
    ctx = context(ca.cert, ca.client("alice"))
    with (
        socket.create_connection((world.node.host, world.node.tls_port), 5) as raw,
        ctx.wrap_socket(raw, server_hostname=world.node.host) as tls_socket,
    ):
        der = tls_socket.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


async def test_server_certificate_rotation_drops_no_connection(
    tls: TlsWorld, tmp_path: Path
) -> None:
    """``orbit broker rotate-cert`` (``LocalNode.rotate_server_certificate``): new connections
    get the new certificate at once; the endpoint and the client stay on their connections."""
    proc = EndpointProcess("ep1", tls.url("ep1"), tmp_path / "ep1", allowed_users=["alice"])
    await proc.start()
    try:
        async with AsyncOrbitClient(url=tls.url("alice"), timeout=30) as client:
            assert (await client.call("ep1", "orbit.ping"))["pong"]
            before = {c.name for c in await connections(tls, {"ep1", "alice"})}
            old = served_serial(tls)
            await asyncio.to_thread(tls.node.rotate_server_certificate)
            assert served_serial(tls) != old
            assert (await client.call("ep1", "orbit.ping"))["pong"]  # same connections
            after = {c.name for c in await connections(tls, {"ep1", "alice"})}
            assert after == before, (before, after)
            async with AsyncOrbitClient(url=tls.url("alice"), timeout=30) as fresh:
                assert (await fresh.call("ep1", "orbit.ping"))["endpoint"] == "ep1"
    finally:
        await proc.stop()
    assert "reconnecting" not in proc.log()  # the endpoint never lost its connections


async def test_x509_external_login_for_an_endpoint(tls: TlsWorld, tmp_path: Path) -> None:
    """ep2 has no password at all; its certificate (CN=ep2) is its identity."""
    assert not login(tls, "ep2", tls.node.certificate_authority().client("ep2"))  # no PLAIN
    url = tls.url("ep2", external=True)
    assert "auth=external" in url and ":" not in url.split("@")[0].removeprefix("amqps://")
    proc = await EndpointProcess("ep2", url, tmp_path / "ep2", allowed_users=["alice"]).start()
    try:
        async with AsyncOrbitClient(url=tls.url("alice"), timeout=30) as client:
            assert (await client.call("ep2", "orbit.ping"))["endpoint"] == "ep2"
        mechs = {c.auth_mechanism for c in await connections(tls, {"ep2"})}
        assert mechs == {"EXTERNAL"}
    finally:
        await proc.stop()
    # a certificate whose CN names no broker user is refused
    mallory = tls.node.amqps_url(VHOST, "mallory", None, external=True)
    with pytest.raises(Exception, match=r"(?i)refused|auth|closed"):
        await aio_pika.connect(mallory, timeout=10, connection_class=_ClosedOnFailure)


def _free_block(width: int = 5) -> int:
    """A port ``p`` with ``p-1 … p+width-2`` all free (TLS, AMQP, management, dist, epmd)."""
    for _ in range(50):
        base = free_port()
        if base > 1100 and not any(port_in_use(p) for p in range(base - 1, base + width - 1)):
            return base
    raise RuntimeError("no free port block")


def _orbit(env: dict[str, str], *args: str) -> Ran:
    return orbit_sync(env, *args, timeout=180)


async def test_cli_broker_up_tls_no_plaintext(tmp_path: Path) -> None:
    """``orbit broker up --tls --no-plaintext``: profile URLs are amqps with per-user certs."""
    port = _free_block()
    env = dict(os.environ) | {
        "ORBIT_PROFILE": str(tmp_path / "profile.json"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "COLUMNS": "200",
    }
    data = tmp_path / "node"
    flags = ["--port", str(port), "--data-dir", str(data)]
    up = _orbit(env, "broker", "up", *flags, "--tls", "--no-plaintext", "-e", "demo")
    try:
        assert up.rc == 0, up.stdout + up.stderr
        print("\n" + up.stdout)
        prof = json.loads((tmp_path / "profile.json").read_text())
        client_url, ep_url = prof["client"]["url"], prof["endpoints"]["demo"]["url"]
        assert prof["broker"]["tls_port"] == port - 1 and prof["broker"]["plaintext"] is False
        for url in (client_url, ep_url):
            assert url.startswith("amqps://") and f":{port - 1}/" in url
        assert "client-demo.pem" in ep_url
        password = urlsplit(client_url).password
        assert password and password not in up.stdout + up.stderr
        assert not port_in_use(port), "plain AMQP listener must be off"
        status = _orbit(env, "broker", "status", *flags, "--json")
        assert status.rc == 0 and json.loads(status.stdout)["ready"], status.stdout
        owner = prof["endpoints"]["demo"]["owner"]
        proc = await EndpointProcess("demo", ep_url, tmp_path / "ep", owner=owner).start()
        try:
            async with AsyncOrbitClient(url=client_url, timeout=30) as client:
                assert (await client.call("demo", "orbit.ping"))["endpoint"] == "demo"
                rotated = _orbit(env, "broker", "rotate-cert", *flags)
                assert rotated.rc == 0 and "new server certificate" in rotated.stderr, rotated
                assert (await client.call("demo", "orbit.ping"))["endpoint"] == "demo"
        finally:
            await proc.stop()
    finally:
        down = _orbit(env, "broker", "down", *flags)
        assert down.rc == 0, down.stdout + down.stderr
