"""Shared fixtures: one real RabbitMQ per test session, a fresh vhost per test
(docs/architecture.md).

Where the broker comes from, in order:

1. ``ORBIT_TEST_AMQP_URL`` (+ ``ORBIT_TEST_MANAGEMENT_URL``, default ``http://<host>:15672``),
   an admin user's URL, e.g. ``amqp://guest:guest@127.0.0.1:5672/``;
2. ``testcontainers`` with a reachable Docker engine: ``rabbitmq:3.13-management``;
3. a private node from the Debian ``rabbitmq-server`` package in a temp dir, on free ports
   (so it coexists with a dev node on 35672 and the system node on 5672).

If none works the ``broker`` fixture fails (never skips).

Fixtures:

* ``broker`` (session): ``.amqp_url(vhost)``, ``.management`` (ManagementClient),
  ``.management_url``, ``.user``, ``.password``, ``.node`` (LocalNode or None: for
  kill/restart tests ``broker.node.kill()`` / ``broker.node.start()``).
* ``vhost`` (function): name of a fresh vhost, the admin user has full permissions and the
  core topology (``orbit_protocol.topology.core()``) is declared; deleted afterwards.
* ``amqp_url`` (function): ``broker.amqp_url(vhost)``.
* ``management`` (session): ``broker.management``.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx
import pytest
import pytest_asyncio

from orbit_broker.local import LocalNode
from orbit_broker.management import ManagementClient, Permissions
from orbit_broker.topology import declare_all
from tests.testkit.nodes import start_node

pytest_plugins = ["tests.testkit.local"]  # memory-broker fixtures (tests/local)

ENV_AMQP = "ORBIT_TEST_AMQP_URL"
ENV_MANAGEMENT = "ORBIT_TEST_MANAGEMENT_URL"


@dataclass
class Broker:
    """A RabbitMQ the tests may use freely (as an admin user)."""

    host: str
    port: int
    user: str
    password: str
    management_url: str
    node: LocalNode | None = None
    _closers: list[Any] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.management = ManagementClient(self.management_url, self.user, self.password)

    def amqp_url(self, vhost: str = "/") -> str:
        user, password = quote(self.user, safe=""), quote(self.password, safe="")
        return f"amqp://{user}:{password}@{self.host}:{self.port}/{quote(vhost, safe='')}"

    def close(self) -> None:
        self.management.close()
        for closer in reversed(self._closers):
            closer()


def _from_env() -> Broker | None:
    url = os.environ.get(ENV_AMQP)
    if not url:
        return None
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    mgmt = os.environ.get(ENV_MANAGEMENT) or f"http://{host}:15672"
    return Broker(
        host=host,
        port=parts.port or 5672,
        user=unquote(parts.username or "guest"),
        password=unquote(parts.password or "guest"),
        management_url=mgmt,
    )


def _wait_management(url: str, user: str, password: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/overview", auth=(user, password), timeout=2).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"management API at {url} not ready after {timeout:.0f} s")


def _from_testcontainers() -> Broker | None:
    try:
        from testcontainers.rabbitmq import (  # type: ignore[import-not-found, unused-ignore]
            RabbitMqContainer,
        )

        import docker  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    try:
        docker.from_env(timeout=3).ping()  # type: ignore[attr-defined, unused-ignore]
    except Exception:
        return None
    container = RabbitMqContainer("rabbitmq:3.13-management").with_exposed_ports(15672)
    container.start()
    host = container.get_container_host_ip()
    mgmt = f"http://{host}:{container.get_exposed_port(15672)}"
    _wait_management(mgmt, "guest", "guest", 60)
    broker = Broker(host, int(container.get_exposed_port(5672)), "guest", "guest", mgmt)
    broker._closers.append(container.stop)
    return broker


def _private_node(data_dir: Path) -> Broker:
    node = start_node(data_dir, "orbit-test", timeout=90)
    broker = Broker(
        node.host, node.amqp_port, node.username, node.password, node.management_url, node
    )
    broker._closers.append(lambda: node.stop(graceful=False))  # its data dir goes next
    return broker


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """The session's RabbitMQ (see module docstring)."""
    errors: list[str] = []
    found: Broker | None = None
    for name, make in (
        (ENV_AMQP, _from_env),
        ("testcontainers", _from_testcontainers),
        ("private node", lambda: _private_node(tmp_path_factory.mktemp("rabbitmq"))),
    ):
        try:
            found = make()
        except Exception as exc:
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        if found is not None:
            break
    if found is None:
        pytest.fail(
            "no RabbitMQ for the integration tests: install the Debian package "
            f"rabbitmq-server, or set {ENV_AMQP} (and {ENV_MANAGEMENT}) to an admin user's "
            "broker.\n" + "\n".join(errors),
            pytrace=False,
        )
    try:
        found.management.overview()
        yield found
    finally:
        found.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` (node kills, clusters, browsers) first: with ``pytest -n`` they
    start at once on their workers instead of trailing at the end (``make test``)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def management(broker: Broker) -> ManagementClient:
    return broker.management


@pytest_asyncio.fixture
async def vhost(broker: Broker) -> AsyncIterator[str]:
    """A fresh vhost with the core topology; deleted after the test."""
    name = f"test-{secrets.token_hex(4)}"
    broker.management.create_vhost(name, "orbit test")
    broker.management.set_permissions(broker.user, name, Permissions(".*", ".*", ".*"))
    await declare_all(broker.amqp_url(name))
    try:
        yield name
    finally:
        broker.management.delete_vhost(name)


@pytest.fixture
def amqp_url(broker: Broker, vhost: str) -> str:
    """Admin AMQP URL of this test's vhost."""
    return broker.amqp_url(vhost)
