"""Broker URL lists (several nodes of one cluster) in settings, links and the client."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orbit_amqp import Connection, Link
from orbit_amqp.memory import MemoryBroker
from orbit_client import ClientSettings
from orbit_endpoint.settings import EndpointSettings
from orbit_protocol.urls import mask_url, mask_urls, split_urls
from tests.testkit.eventually import eventually

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


async def test_link_moves_to_the_next_url_and_back() -> None:
    """A link whose node is down connects to the next URL; when that one dies too, it
    goes round to the first again (password and vhost come from the first entry)."""
    n1, n2 = MemoryBroker("urls-n1"), MemoryBroker("urls-n2")
    n1.stop()
    setups: list[str] = []

    async def setup(conn: Connection) -> None:
        setups.append(conn.user)

    link = Link(
        "memory://a:b@urls-n1/v,memory://urls-n2", name="t", setup=setup, reconnect_min=0.01
    )
    assert link.url == "memory://a:***@urls-n1/v"
    try:
        await link.start()
        assert link.url == "memory://a:***@urls-n2/v" and setups == ["a"]
        assert {c.vhost.name for c in n2.connections} == {"v"}
        n1.start()
        n2.stop()
        await eventually(lambda: link.ready.is_set() and link.url.endswith("@urls-n1/v"))
        assert setups == ["a", "a"] and link.connects == 2
    finally:
        await link.close()
        n1.close()
        n2.close()
