"""Broker URL lists (several nodes of one cluster) in settings, links and the client."""

from __future__ import annotations

import asyncio

import pytest
from aio_pika.connection import make_url
from pydantic import ValidationError

from orbit_client import ClientSettings
from orbit_client._connection import FailoverConnection
from orbit_endpoint.link import Link
from orbit_endpoint.settings import EndpointSettings
from orbit_protocol.urls import mask_url, mask_urls, split_urls

LIST = (
    "amqps://ep1:s3cret@n1:5671/orbit?certfile=/c.pem, amqps://n2:5671 ,amqps://u:p@n3:5671/other"
)


def test_split_inherits_user_vhost_and_query_from_the_first() -> None:
    assert split_urls(LIST) == [
        "amqps://ep1:s3cret@n1:5671/orbit?certfile=/c.pem",
        "amqps://ep1:s3cret@n2:5671/orbit?certfile=/c.pem",
        "amqps://u:p@n3:5671/other?certfile=/c.pem",
    ]
    assert split_urls("amqp://a:b@h:1/v") == ["amqp://a:b@h:1/v"]
    with pytest.raises(ValueError, match="no broker URL"):
        split_urls(" , ")


def test_masked_urls_carry_no_password_nor_query() -> None:
    assert mask_url("amqp://a:b@h:1/v?certfile=x") == "amqp://a:***@h:1/v"
    masked = mask_urls(LIST)
    assert "s3cret" not in masked and "certfile" not in masked
    assert masked.split(",") == [
        "amqps://ep1:***@n1:5671/orbit",
        "amqps://ep1:***@n2:5671/orbit",
        "amqps://u:***@n3:5671/other",
    ]


def test_settings_accept_a_list() -> None:
    ep = EndpointSettings(name="ep1", url=LIST)
    assert len(ep.urls) == 3 and ep.amqp_user == "ep1"
    assert ep.safe_url == mask_urls(LIST)
    client = ClientSettings(url="amqp://alice:pw@n1:1/orbit,amqp://n2:2")
    assert client.user == "alice" and client.quorum_replies
    assert not ClientSettings(url="amqp://alice:pw@n1:1/orbit").quorum_replies
    assert ClientSettings(url="amqp://a:b@n1:1/o", reply_queue_type="quorum").quorum_replies
    with pytest.raises(ValidationError):
        EndpointSettings(name="ep1", url=",")


async def test_link_and_client_connection_move_to_the_next_url() -> None:
    async def setup(_: object) -> None:
        pass

    link = Link("amqp://a:b@127.0.0.1:1/v,amqp://127.0.0.1:2", name="t", setup=setup)
    assert link.url == "amqp://a:***@127.0.0.1:1/v"
    urls = [make_url(u) for u in split_urls("amqp://a:b@127.0.0.1:1/v,amqp://127.0.0.1:2")]
    conn = FailoverConnection(urls)
    failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    failed.set_exception(ConnectionRefusedError())
    await conn._on_connection_close(failed)
    assert conn.url.port == 2 and conn.url.password == "b"
    await conn._on_connection_close(failed)
    assert conn.url.port == 1
    await conn.close()
