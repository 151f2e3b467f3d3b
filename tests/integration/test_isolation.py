"""Isolation matrix: 3 endpoints × 3 clients, each with its own provisioned broker user.

Client ``c<i>`` may call endpoint ``e<i>`` only. Every cross-tenant operation is tried
and must be refused, by the broker or by the endpoint's own checks (docs/security.md), with no
effect executed. Positive controls prove the same operations work where they are allowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import aiormq.exceptions
import pytest
import pytest_asyncio

from orbit_broker.provision import ClientSpec, EndpointSpec, Provisioner, ProvisionSpec
from orbit_client import AsyncOrbitClient, NotAuthorized
from orbit_protocol import naming
from tests.testkit.eventually import eventually

from .endpoints import EndpointProcess
from .rawpika import request

pytestmark = [pytest.mark.rabbit, pytest.mark.slow]

BROKER_REFUSALS = (
    aiormq.exceptions.ChannelAccessRefused,  # raw aio-pika attempts
    aiormq.exceptions.ChannelPreconditionFailed,
    aiormq.exceptions.ChannelNotFoundEntity,
    NotAuthorized,  # an Orbit client told by the broker (e.g. a refused event binding)
)


@dataclass
class Tenants:
    vhost: str
    urls: dict[str, str]
    endpoints: list[str]
    clients: list[str]
    ledger: Path
    procs: list[EndpointProcess] = field(default_factory=list)


@pytest_asyncio.fixture
async def tenants(broker: Any, vhost: str, tmp_path: Path) -> AsyncIterator[Tenants]:
    tag = secrets.token_hex(2)
    endpoints = [f"e{i}-{tag}" for i in range(3)]
    clients = [f"c{i}-{tag}" for i in range(3)]
    prov = Provisioner(broker.management, broker.amqp_url(), vhost)
    result = await prov.provision(
        ProvisionSpec(
            endpoints=[EndpointSpec(e) for e in endpoints],
            clients=[ClientSpec(c, [e]) for c, e in zip(clients, endpoints, strict=True)],
            responder_user=f"responder-{tag}",
        )
    )
    urls = {name: cred.url(broker.amqp_url(), vhost) for name, cred in result.credentials.items()}
    world = Tenants(vhost, urls, endpoints, clients, tmp_path / "effects.txt")
    try:
        for endpoint, client in zip(endpoints, clients, strict=True):
            proc = EndpointProcess(
                endpoint, urls[endpoint], tmp_path / endpoint, allowed_users=[client], heartbeat=2
            )
            world.procs.append(await proc.start())
        yield world
    finally:
        for proc in world.procs:
            await proc.stop()
        for name in result.credentials:
            broker.management.delete_user(name)


Outcome = str  # "broker", "endpoint", "client" (refused) or "ALLOWED"


async def ignore(message: aio_pika.abc.AbstractIncomingMessage) -> None:
    """A consumer that would steal requests (never reached: the broker refuses it)."""


async def on_channel(
    url: str, action: Callable[[aio_pika.abc.AbstractChannel], Awaitable[Any]]
) -> Outcome:
    """Run ``action`` on a fresh channel; a broker refusal closes the channel."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        try:
            await action(channel)
        except BROKER_REFUSALS:
            return "broker"
        return "ALLOWED"


def effect(world: Tenants, token: str) -> dict[str, Any]:
    return request("testkit", "effect", ledger=str(world.ledger), token=token)


def message(body: dict[str, Any], user: str, reply_to: str, **headers: Any) -> aio_pika.Message:
    return aio_pika.Message(
        json.dumps(body).encode(),
        content_type="application/json",
        correlation_id=uuid.uuid4().hex,
        reply_to=reply_to,
        user_id=user,
        headers={"x-orbit-v": 1, **headers},
    )


async def attacks(world: Tenants, attacker: str, own: str, victim: str) -> dict[str, Outcome]:
    """Every way ``attacker`` (or ``own``, its tenant's endpoint) might reach endpoint
    ``victim`` or its traffic."""
    url = world.urls[attacker]
    victim_client = world.clients[world.endpoints.index(victim)]
    queue = naming.request_queue(victim)
    results: dict[str, Outcome] = {}

    async with AsyncOrbitClient(url=url, timeout=10) as client:
        try:
            await client.call(
                victim, "testkit.effect", ledger=str(world.ledger), token=f"call-{attacker}"
            )
            results["call via orbit client"] = "ALLOWED"
        except NotAuthorized:
            results["call via orbit client"] = "broker"

    async def consume(ch: aio_pika.abc.AbstractChannel) -> None:
        q = await ch.get_queue(queue, ensure=False)
        await q.consume(ignore)

    async def get(ch: aio_pika.abc.AbstractChannel) -> None:
        await (await ch.get_queue(queue, ensure=False)).get(no_ack=False, fail=False)

    async def purge(ch: aio_pika.abc.AbstractChannel) -> None:
        await (await ch.get_queue(queue, ensure=False)).purge()

    async def delete(ch: aio_pika.abc.AbstractChannel) -> None:
        await (await ch.get_queue(queue, ensure=False)).delete(if_unused=False, if_empty=False)

    async def own_queue(ch: aio_pika.abc.AbstractChannel) -> aio_pika.abc.AbstractQueue:
        return await ch.declare_queue(naming.reply_queue(attacker), arguments={"x-expires": 60000})

    async def bind_requests(ch: aio_pika.abc.AbstractChannel) -> None:
        await (await own_queue(ch)).bind(naming.REQUEST_EXCHANGE, victim)

    async def bind_events(ch: aio_pika.abc.AbstractChannel) -> None:
        await (await own_queue(ch)).bind(naming.EVENT_EXCHANGE, f"{victim}.#")

    async def bind_replies(ch: aio_pika.abc.AbstractChannel) -> None:
        await (await own_queue(ch)).bind(naming.REPLY_EXCHANGE, f"orbit.reply.{victim_client}.#")

    async def foreign_namespace(ch: aio_pika.abc.AbstractChannel) -> None:
        await ch.declare_queue(naming.reply_queue(victim_client), arguments={"x-expires": 60000})

    async def default_exchange(ch: aio_pika.abc.AbstractChannel) -> None:
        await ch.default_exchange.publish(message(effect(world, "default"), attacker, "x"), queue)

    async def publish_victim(ch: aio_pika.abc.AbstractChannel) -> None:
        exchange = await ch.get_exchange(naming.REQUEST_EXCHANGE, ensure=False)
        await exchange.publish(message(effect(world, "direct"), attacker, "x"), victim)

    async def forged_user(ch: aio_pika.abc.AbstractChannel) -> None:
        exchange = await ch.get_exchange(naming.REQUEST_EXCHANGE, ensure=False)
        await exchange.publish(message(effect(world, "forged"), victim_client, "x"), own)

    directory = naming.directory_queue(victim_client)
    seen = naming.last_seen_queue(victim_client, victim)

    async def get_directory(ch: aio_pika.abc.AbstractChannel) -> None:
        await (await ch.get_queue(directory, ensure=False)).get(no_ack=False, fail=False)

    async def get_seen(ch: aio_pika.abc.AbstractChannel) -> None:
        await (await ch.get_queue(seen, ensure=False)).get(no_ack=False, fail=False)

    async def bind_directory(ch: aio_pika.abc.AbstractChannel) -> None:
        await (await ch.get_queue(directory, ensure=False)).bind(naming.EVENT_EXCHANGE, "#")

    async def delete_directory(ch: aio_pika.abc.AbstractChannel) -> None:
        await (await ch.get_queue(directory, ensure=False)).delete(if_unused=False)

    for name, action in {
        "read victim client's directory": get_directory,
        "read victim client's last-seen": get_seen,
        "bind victim client's directory": bind_directory,
        "delete victim client's directory": delete_directory,
        "consume victim queue": consume,
        "basic.get victim queue": get,
        "purge victim queue": purge,
        "delete victim queue": delete,
        "bind to victim requests": bind_requests,
        "bind to victim events": bind_events,
        "bind to victim's client replies": bind_replies,
        "declare in foreign namespace": foreign_namespace,
        "publish via default exchange": default_exchange,
        "publish to victim key": publish_victim,
        "forged user_id": forged_user,
    }.items():
        results[name] = await on_channel(url, action)
    results["CC header to victim"] = await routed_attack(world, attacker, own, victim, "cc")
    results["BCC header to victim"] = await routed_attack(world, attacker, own, victim, "bcc")
    results["own exchange bound to requests"] = await routed_attack(
        world, attacker, own, victim, "e2e"
    )

    # the attacker's endpoint (same tenant) turns against the victim endpoint and its client
    async def events_as_victim(ch: aio_pika.abc.AbstractChannel) -> None:
        exchange = await ch.get_exchange(naming.EVENT_EXCHANGE, ensure=False)
        forged = {"v": 1, "endpoint": victim, "plugin": "orbit", "topic": "presence", "data": {}}
        await exchange.publish(message(forged, own, ""), naming.presence_routing_key(victim))

    results["endpoint: events as victim"] = await on_channel(world.urls[own], events_as_victim)
    results["endpoint: forged reply to victim's client"] = await forged_reply(
        world, own, victim_client, victim
    )
    return results


async def forged_reply(world: Tenants, forger: str, client: str, endpoint: str) -> Outcome:
    """``forger`` (another endpoint's user) answers ``client``'s pending call to ``endpoint``
    first, with the right correlation id: the client must drop it and take the real reply."""
    async with AsyncOrbitClient(url=world.urls[client], timeout=20) as c:
        await c.call(endpoint, "testkit.echo", value="warm-up")
        await eventually(  # the client learns the endpoint's user from its presence
            lambda: c.presence.expected_user(endpoint) == endpoint, what="presence seen"
        )
        call = asyncio.ensure_future(c.call(endpoint, "testkit.echo", value="real", delay=1.5))
        await eventually(lambda: c._inbox._pending, what="the call is pending")  # its id
        corr = next(iter(c._inbox._pending))
        connection = await aio_pika.connect(world.urls[forger])
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            replies = await channel.get_exchange(naming.REPLY_EXCHANGE, ensure=False)
            forged = aio_pika.Message(
                json.dumps({"v": 1, "ok": True, "result": {"value": "forged"}}).encode(),
                content_type="application/json",
                correlation_id=corr,
                user_id=forger,
                headers={"x-orbit-v": 1},
            )
            try:
                await replies.publish(forged, c.reply_queue)
            except BROKER_REFUSALS:
                call.cancel()
                return "broker"
        result = await call
    return "client" if result == {"value": "real"} else "ALLOWED"


async def routed_attack(world: Tenants, attacker: str, own: str, victim: str, how: str) -> Outcome:
    """Routes the broker cannot stop on 3.10.8 (CC/BCC headers; an exchange of the client's own,
    bound to ``orbit.requests``): the victim endpoint must refuse them itself."""
    connection = await aio_pika.connect(world.urls[attacker])
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        replies = await channel.declare_queue(
            naming.reply_queue(attacker), arguments={"x-expires": 60000}
        )
        await replies.bind(naming.REPLY_EXCHANGE, replies.name)
        requests = await channel.get_exchange(naming.REQUEST_EXCHANGE, ensure=False)
        body = effect(world, f"{how}-{attacker}")
        expected = {victim}
        try:
            if how in ("cc", "bcc"):
                header = how.upper()
                await requests.publish(
                    message(body, attacker, replies.name, **{header: [victim]}), own
                )
                expected.add(own)  # the attacker's own endpoint legitimately gets a copy
            else:
                mine = await channel.declare_exchange(
                    f"orbit.reply.{attacker}.x", aio_pika.ExchangeType.TOPIC, auto_delete=True
                )
                await requests.bind(mine, "#")
                await mine.publish(message(body, attacker, replies.name), victim)
        except BROKER_REFUSALS:
            return "broker"
        codes: dict[str, str] = {}
        with contextlib.suppress(TimeoutError):
            async with replies.iterator(timeout=10) as it:
                async for delivery in it:
                    await delivery.ack()
                    error = json.loads(delivery.body).get("error") or {}
                    codes[delivery.user_id or "?"] = error.get("code", "ok")
                    if set(codes) >= expected:
                        break
    if victim not in codes:
        return "broker"  # the copy never reached the victim (a patched broker)
    return "endpoint" if codes[victim] == "NOT_AUTHORIZED" else "ALLOWED"


async def test_isolation_matrix(tenants: Tenants, capsys: pytest.CaptureFixture[str]) -> None:
    world = tenants
    # positive controls: each client reaches its own endpoint, and only its own
    for client, endpoint in zip(world.clients, world.endpoints, strict=True):
        async with AsyncOrbitClient(url=world.urls[client], timeout=20) as c:
            token = f"ok-{client}"
            assert await c.call(endpoint, "testkit.effect", ledger=str(world.ledger), token=token)
            # a restricted client follows the presence of the endpoints it calls
            await eventually(lambda e=endpoint: e in c.endpoints(), timeout=6, what="presence")
            info = c.endpoints()[endpoint]
            assert info.online and info.user == endpoint
            assert set(c.endpoints()) == {endpoint}  # and sees no one else's
            listed = await c.directory()  # the directory names its grants, no others
            assert [(e.name, e.state, e.user) for e in listed] == [(endpoint, "online", endpoint)]
    allowed_tokens = {f"ok-{c}" for c in world.clients}

    matrix: dict[tuple[str, str], dict[str, Outcome]] = {}
    for i, attacker in enumerate(world.clients):
        for j, victim in enumerate(world.endpoints):
            if i != j:
                matrix[(attacker, victim)] = await attacks(
                    world, attacker, world.endpoints[i], victim
                )

    operations = list(next(iter(matrix.values())))
    with capsys.disabled():
        print(
            "\nisolation matrix (tenant c<i>/e<i> -> victim endpoint e<j>):"
            " broker | endpoint | client = refused"
        )
        width = max(36, *(len(op) + 2 for op in operations))
        print(f"{'operation':{width}}" + "".join(f"{a[:2]}->{v[:2]:<8}" for a, v in matrix))
        for op in operations:
            print(f"{op:{width}}" + "".join(f"{matrix[k][op]:<12}" for k in matrix))
        refused = sum(o != "ALLOWED" for r in matrix.values() for o in r.values())
        print(f"refused {refused} of {len(matrix) * len(operations)} cross-tenant operations")

    leaks = {(k, op) for k, r in matrix.items() for op, o in r.items() if o == "ALLOWED"}
    assert not leaks, leaks
    executed = set(world.ledger.read_text().split()) - {
        str(p.proc.pid) for p in world.procs if p.proc
    }
    unauthorized = {t for t in executed if not t.isdigit()} - allowed_tokens
    # a CC/BCC copy to the attacker's *own* endpoint is legitimately executed there
    unauthorized = {t for t in unauthorized if not t.startswith(("cc-", "bcc-"))}
    assert not unauthorized, unauthorized

    # no secret in any endpoint log (the endpoints logged connects, refusals and calls)
    passwords = {urlsplit(u).password for u in world.urls.values()} - {None}
    for proc in world.procs:
        text = proc.log_path.read_text()
        assert "refused" in text or "consuming" in text  # the log is real
        leaked = [p for p in passwords if p and p in text]
        assert not leaked, f"password in {proc.log_path}"


async def test_forged_reply_from_another_endpoint_is_dropped(
    tenants: Tenants, caplog: pytest.LogCaptureFixture
) -> None:
    """docs/security.md: a reply with the right correlation id but another endpoint's ``user_id``
    is dropped (and logged); the addressed endpoint's real reply still completes the call."""
    world = tenants
    caplog.set_level(logging.WARNING, logger="orbit_client")
    outcome = await forged_reply(world, world.endpoints[0], world.clients[1], world.endpoints[1])
    assert outcome == "client"
    dropped = [r.getMessage() for r in caplog.records if "dropping reply" in r.getMessage()]
    assert len(dropped) == 1, dropped
    assert repr(world.endpoints[0]) in dropped[0] and repr(world.endpoints[1]) in dropped[0]
