"""orbit_broker pieces that need no broker: permission rows, grant parsing, profile, config."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from orbit_broker.local import LocalNode, free_port
from orbit_broker.management import ManagementClient, Permissions
from orbit_broker.permissions import (
    orchestrator_permissions,
    orchestrator_topic_permissions,
    pools_of,
)
from orbit_broker.provision import (
    Credentials,
    client_permissions,
    client_topic_permissions,
    endpoint_permissions,
    make_url,
    parse_grants,
    write_profile,
)
from orbit_broker.topology import full_topology, queue_differences
from orbit_protocol import topology as spec
from orbit_protocol.errors import BrokerError


def test_endpoint_rows_are_literal_design_rows() -> None:
    assert endpoint_permissions("hpc1") == Permissions(
        "^$", r"^orbit\.(replies|events)$", r"^orbit\.ep\.hpc1$"
    )
    assert endpoint_permissions("hpc1", ["gpu", "cpu"]).read == (
        r"^orbit\.(ep\.hpc1|pool\.cpu|pool\.gpu)$"
    )


def test_client_rows_are_literal_design_rows() -> None:
    assert client_permissions("alice") == Permissions(
        r"^orbit\.(reply|sub)\.alice\..+$",
        r"^(orbit\.requests|orbit\.(reply|sub)\.alice\..+)$",
        r"^(orbit\.replies|orbit\.events|orbit\.(reply|sub)\.alice\..+)$",
    )
    rows = client_topic_permissions("alice", ["b", "a"], ["gpu"])
    assert rows["orbit.requests"].write == r"^(a|b|pool\.gpu)$"
    assert rows["orbit.events"].read == r"^(a|b)\."
    assert rows["orbit.replies"].read == r"^orbit\.reply\.alice\."
    empty = client_topic_permissions("alice")
    assert empty["orbit.requests"].write == "^$" and empty["orbit.events"].read == "^$"


def test_grants_round_trip() -> None:
    rows = client_topic_permissions("alice", ["ep-1", "ep_2"], ["gpu"])
    assert parse_grants(rows["orbit.requests"].write) == ({"ep-1", "ep_2"}, {"gpu"})
    assert parse_grants("^$") == (set(), set())
    with pytest.raises(BrokerError, match="not written by Orbit"):
        parse_grants(".*")


def test_names_are_validated() -> None:
    with pytest.raises(ValueError):
        client_permissions("Alice.x")
    with pytest.raises(ValueError):
        endpoint_permissions("a|b")


def test_queue_differences() -> None:
    queue = spec.endpoint("ep1").queues[0]
    assert queue_differences(queue, queue.args) == []
    changed = {**queue.args, "x-max-length": 10}
    del changed["x-message-ttl"]
    assert queue_differences(queue, changed) == [
        "x-max-length: is 10, Orbit wants 100000",
        "x-message-ttl: absent, Orbit wants 86400000",
    ]
    assert len(full_topology(["a", "b"], ["p"]).queues) == 4  # dead + 2 endpoints + pool


def test_credentials_and_urls_hide_passwords() -> None:
    creds = Credentials("alice", "s3cr:t/")
    assert "s3cr" not in repr(creds)
    url = creds.url("amqp://admin:pw@host:5672/", "orbit")
    assert url == "amqp://alice:s3cr%3At%2F@host:5672/orbit"
    assert make_url("amqps://h", "u", "p", "/") == "amqps://u:p@h/%2F"


def test_write_profile_is_private_and_merges(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "profile.json"
    write_profile(path, "amqp://a:b@h/orbit", timeout=30)
    write_profile(path, "amqp://e:f@h/orbit", section="endpoint", name="hpc1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["client"] == {"url": "amqp://a:b@h/orbit", "timeout": 30}
    assert data["endpoint"]["name"] == "hpc1"
    assert list(path.parent.iterdir()) == [path]


def test_local_node_config_is_private(tmp_path: Path) -> None:
    node = LocalNode(data_dir=tmp_path, name="orbit-unit", amqp_port=40001, management_port=40002)
    node._write_config()
    conf = (tmp_path / "rabbitmq.conf").read_text()
    assert "listeners.tcp.default = 127.0.0.1:40001" in conf
    assert "management.tcp.port = 40002" in conf
    assert "max_message_size = 16777216" in conf and "loopback_users = none" in conf
    assert (tmp_path / "enabled_plugins").read_text().strip() == "[rabbitmq_management]."
    env = node.env()
    assert env["RABBITMQ_NODENAME"] == "orbit-unit@localhost"
    assert env["ERL_EPMD_PORT"] == "14369" and env["HOME"] == str(tmp_path / "home")
    assert env["RABBITMQ_CONF_ENV_FILE"].startswith(str(tmp_path))  # never /etc/rabbitmq
    assert node.amqp_url("orbit") == "amqp://guest:guest@127.0.0.1:40001/orbit"
    assert node.amqp_url("/") == "amqp://guest:guest@127.0.0.1:40001/%2F"
    assert not node.is_running() and node.pid is None


def test_tls_authority_issues_server_client_and_expired_certificates(tmp_path: Path) -> None:
    import datetime as dt
    import ipaddress

    from cryptography import x509

    from orbit_broker.tls import CertificateAuthority, node_config

    ca = CertificateAuthority.create(tmp_path / "tls")
    assert CertificateAuthority.create(tmp_path / "tls").cert.read_bytes() == ca.cert.read_bytes()
    assert stat.S_IMODE(ca.key.stat().st_mode) == 0o600
    server = ca.issue_server()
    cert = x509.load_pem_x509_certificate(server.cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    alice = ca.issue_client("alice")
    assert alice.common_name() == "alice" and stat.S_IMODE(alice.key.stat().st_mode) == 0o600
    old = x509.load_pem_x509_certificate(
        ca.issue_client("alice", stem="old", expired=True).cert.read_bytes()
    )
    assert old.not_valid_after_utc < dt.datetime.now(dt.UTC)
    query = alice.query(ca.cert, external=True)
    assert "certfile=" in query and "keyfile=" in query and query.endswith("auth=external")
    conf = node_config(ca, server, host="127.0.0.1", port=5671, plaintext=False)
    assert conf["ssl_options.verify"] == "verify_peer"
    assert conf["ssl_options.fail_if_no_peer_cert"] == "true"
    assert {conf["ssl_options.versions.1"], conf["ssl_options.versions.2"]} == {
        "tlsv1.3",
        "tlsv1.2",
    }
    assert conf["listeners.tcp"] == "none"
    assert "listeners.tcp" not in node_config(ca, server, host="h", port=1, plaintext=True)


def test_tls_node_config_has_no_plain_listener(tmp_path: Path) -> None:
    node = LocalNode(data_dir=tmp_path, tls_port=35671, plaintext=False)
    node._write_config()
    conf = (tmp_path / "rabbitmq.conf").read_text()
    assert "listeners.tcp = none" in conf and "listeners.tcp.default" not in conf
    assert "listeners.ssl.default = 127.0.0.1:35671" in conf
    assert "rabbitmq_auth_mechanism_ssl" in (tmp_path / "enabled_plugins").read_text()
    assert "RABBITMQ_NODE_PORT" not in node.env()
    assert node.amqp_url("orbit").startswith("amqps://guest:guest@127.0.0.1:35671/orbit?cafile=")


def test_lint_matches_like_rabbitmq_and_exempts_administrators() -> None:
    from orbit_broker.lint import lint_definitions, matches

    assert not matches("", "amq.default") and not matches("^$", "amq.default")
    assert matches("amq", "amq.default")  # unanchored, as Erlang's re:run
    defs = {
        "users": [{"name": "root", "tags": ["administrator"]}, {"name": "bob", "tags": ""}],
        "exchanges": [{"vhost": "v", "name": "orbit.requests", "type": "topic"}],
        "queues": [],
        "permissions": [
            {"vhost": "v", "user": "root", "configure": ".*", "write": ".*", "read": ".*"},
            {"vhost": "v", "user": "bob", "configure": "", "write": "orbit", "read": "^$"},
            {"vhost": "other", "user": "bob", "configure": ".*", "write": ".*", "read": ".*"},
        ],
        "topic_permissions": [],
    }
    found = [(f.rule, f.user, f.target) for f in lint_definitions(defs, "v")]
    assert found == [("topic-permission", "bob", "orbit.requests")]


def test_cli_limit_defaults_match_provisioning() -> None:
    import inspect

    from orbit_broker.provision import CLIENT_LIMITS, ENDPOINT_LIMITS
    from orbit_cli.commands import broker_access

    params = inspect.signature(broker_access.provision).parameters
    assert params["client_connections"].default == CLIENT_LIMITS.max_connections
    assert params["endpoint_connections"].default == ENDPOINT_LIMITS.max_connections
    assert params["max_channels"].default == CLIENT_LIMITS.max_channels


def _management_with(handler: Callable[[httpx.Request], httpx.Response]) -> ManagementClient:
    mgmt = ManagementClient("http://127.0.0.1:1", "u", "p")
    mgmt._http = httpx.Client(base_url=mgmt.base_url, transport=httpx.MockTransport(handler))
    return mgmt


def test_close_connection_counts_a_connection_gone_while_closing_as_closed() -> None:
    # The broker answers 500 to DELETE /connections/X when X ends under it (its user was just
    # deleted); seen in CI. Closing is then a success once GET says 404.
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if request.method == "DELETE":
            return httpx.Response(500, json={"error": "Internal Server Error"})
        return httpx.Response(500 if calls.count("GET") == 1 else 404)

    _management_with(handler).close_connection("127.0.0.1:1 -> 127.0.0.1:2")
    assert calls == ["DELETE", "GET", "GET"]


def test_close_connection_still_raises_when_the_connection_stays() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(500, json={"error": "Internal Server Error"})
        return httpx.Response(200, json={"name": "c"})

    with pytest.raises(BrokerError, match="HTTP 500"):
        _management_with(handler).close_connection("c")


def test_close_connection_does_not_hide_other_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"reason": "not_authorised"})

    with pytest.raises(BrokerError, match="HTTP 403"):
        _management_with(handler).close_connection("c")


def test_free_port_is_below_the_kernels_source_port_range() -> None:
    # a port from the ephemeral range can be taken by any outgoing connection before the
    # node binds it (seen in CI as RabbitMQ's dist_port_already_used)
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_port() for _ in range(20)}
    assert all(20000 <= port < low for port in ports)
    assert len(ports) > 1


def test_an_orchestrator_is_an_endpoint_with_a_clients_own_queues() -> None:
    rows = orchestrator_permissions("orch", ["gpu"])
    assert rows.configure == client_permissions("orch").configure
    assert rows.read == (
        r"^(?:orbit\.(ep\.orch|pool\.gpu)|(orbit\.replies|orbit\.events|orbit\.(reply|sub)\.orch\..+))$"
    )
    assert pools_of(rows) == {"gpu"} and pools_of(endpoint_permissions("e", ["a", "b"])) == {
        "a",
        "b",
    }
    topic = orchestrator_topic_permissions("orch", ["t1"])
    assert topic["orbit.requests"].write == "^(t1)$"
    assert (topic["orbit.events"].write, topic["orbit.events"].read) == (r"^orch\.", r"^(t1)\.")
    assert topic["orbit.replies"].read == r"^orbit\.reply\.orch\."
