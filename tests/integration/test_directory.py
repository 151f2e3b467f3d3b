"""The endpoint directory on a real RabbitMQ: provisioning writes it, grant and revoke keep it
right at once, a removed user's directory goes with it (docs/directory.md). Who may read
whose directory is part of the isolation matrix (test_isolation.py)."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from orbit_broker.provision import ClientSpec, EndpointSpec, Provisioner, ProvisionSpec
from orbit_client import AsyncOrbitClient
from orbit_protocol import naming
from tests.testkit.eventually import eventually

from .endpoints import EndpointProcess

DOC = Path(__file__).resolve().parents[2] / "docs" / "directory.md"

pytestmark = [pytest.mark.rabbit, pytest.mark.slow]


@pytest_asyncio.fixture
async def users(broker: Any) -> AsyncIterator[list[str]]:
    made: list[str] = []
    yield made
    for name in made:
        if broker.management.user_exists(name):
            broker.management.delete_user(name)


async def test_directory_follows_provision_grant_and_revoke(
    broker: Any, vhost: str, users: list[str], tmp_path: Path
) -> None:
    tag = secrets.token_hex(2)
    a, b, alice = f"dira-{tag}", f"dirb-{tag}", f"dalice-{tag}"
    users += [a, b, alice, f"responder-{tag}"]
    prov = Provisioner(broker.management, broker.amqp_url(), vhost)
    spec = ProvisionSpec(
        endpoints=[EndpointSpec(a), EndpointSpec(b)],
        clients=[ClientSpec(alice, [a], pools=["gpu"])],
        responder_user=f"responder-{tag}",
    )
    dry = prov.plan(spec)
    assert f"write-directory      {alice}" in str(dry), str(dry)
    result = await prov.provision(spec)
    assert prov.plan(spec).empty  # the directory written matches the grants
    url = {n: c.url(broker.amqp_url(), vhost) for n, c in result.credentials.items()}
    endpoint = await EndpointProcess(
        a, url[a], tmp_path / a, allowed_users=[alice], heartbeat=2
    ).start()
    try:
        async with AsyncOrbitClient(url=url[alice], timeout=10) as client:
            listed = {e.name: e for e in await client.directory()}
            assert set(listed) == {a, "gpu"}
            assert (listed[a].state, listed[a].user) == ("online", a)
            assert listed[a].presence is not None and listed[a].presence.plugins["testkit"]
            assert listed["gpu"].kind == "pool" and listed["gpu"].provisioned
            assert f"{a} consumers 1 backlog 0" in _doc_reader(url[alice], alice)

            prov.grant(alice, b)  # seen at once, no reconnect
            listed = {e.name: e for e in await client.directory()}
            assert set(listed) == {a, b, "gpu"} and listed[b].state == "unknown"

            prov.revoke(alice, b)  # closes alice's connections; the client reconnects
            names = await _names_after_reconnect(client)
            assert names == {a, "gpu"}
            assert broker.management.get_queue(vhost, naming.last_seen_queue(alice, b)) is None

            await endpoint.stop()  # its offline presence is the last seen

            async def offline() -> bool:
                found = {e.name: e for e in await client.directory()}
                return found[a].state == "offline" and found[a].last_seen is not None

            await eventually(offline, timeout=10, what=f"{a} offline with its last seen")
    finally:
        await endpoint.stop()
    prov.revoke_user(alice)
    left = {q.name for q in broker.management.list_queues(vhost)}
    assert naming.directory_queue(alice) not in left
    assert naming.last_seen_queue(alice, a) not in left


async def _names_after_reconnect(client: AsyncOrbitClient) -> set[str]:
    names: set[str] = set()

    async def read() -> bool:
        try:
            names.clear()
            names.update(e.name for e in await client.directory())
        except Exception:  # the link is reconnecting after the forced close
            return False
        return True

    await eventually(read, timeout=15, what="the directory read after the revoke")
    return names


def _doc_reader(url: str, user: str) -> str:
    """Run the raw-pika reader of docs/directory.md as written, for ``user`` at ``url``."""
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert code is not None
    script = code[1].replace("amqp://alice:secret@127.0.0.1:5672/orbit", url)
    script = script.replace("orbit.sub.alice.directory", naming.directory_queue(user))
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    return run.stdout
