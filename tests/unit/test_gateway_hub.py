"""The gateway's fan-out without a broker: ids, replay, filters, a slow listener."""

from __future__ import annotations

from typing import Any, cast

from sse_starlette import ServerSentEvent

from orbit_client import AsyncOrbitClient
from orbit_gateway.hub import EventHub, Filter
from orbit_gateway.settings import GatewaySettings
from orbit_protocol import Event


def hub(history: int = 5, client_queue: int = 3) -> EventHub:
    return EventHub(cast(AsyncOrbitClient, None), history=history, client_queue=client_queue)


def event(i: int, endpoint: str = "ep1", topic: str = "tick") -> Event:
    return Event(endpoint=endpoint, plugin="kit", topic=topic, data={"i": i})


def drain(listener: Any) -> list[int]:
    out = []
    while not listener.queue.empty():
        out.append(listener.queue.get_nowait().event.data["i"])
    return out


def test_ids_and_replay_from_the_ring_buffer() -> None:
    h = hub(history=5)
    for i in range(8):
        h.publish(event(i))
    assert h.seq == 8 and h.oldest_id() == 4
    _, backlog = h.attach(Filter(), last_id=6)
    assert [f.id for f in backlog] == [7, 8]
    _, everything = h.attach(Filter(), last_id=99)  # ids from before a restart
    assert [f.id for f in everything] == [4, 5, 6, 7, 8]
    _, fresh = h.attach(Filter(), last_id=None)
    assert fresh == []


def test_filters_and_frame_shape() -> None:
    h = hub()
    only = h.attach(Filter(endpoints=frozenset({"ep2"})), None)[0]
    h.publish(event(1, "ep1"))
    frame = h.publish(event(2, "ep2"))
    assert drain(only) == [2]
    assert frame.kind == "notification"
    assert set(frame.payload()) == {"endpoint", "plugin", "topic", "data", "ts"}
    presence = Event(endpoint="ep1", plugin="orbit", topic="presence", data={})
    assert h.publish(presence).kind == "topology"


def test_a_slow_listener_overflows_alone() -> None:
    h = hub(history=100, client_queue=3)
    slow, _ = h.attach(Filter(), None)
    fast, _ = h.attach(Filter(), None)
    for i in range(10):
        h.publish(event(i))
        drain(fast) if i % 2 else None
    assert slow.overflowed and not fast.overflowed
    _, resume = h.attach(Filter(), last_id=3)  # the slow browser reconnects
    assert [f.event.data["i"] for f in resume] == list(range(3, 10))


def test_user_url_replaces_credentials() -> None:
    s = GatewaySettings(url="amqps://gw:secret@broker.example:5671/orbit?heartbeat=10")
    assert s.user_url("alice", "p@ss:w/rd") == (
        "amqps://alice:p%40ss%3Aw%2Frd@broker.example:5671/orbit?heartbeat=10"
    )
    assert s.safe_url == "amqps://broker.example:5671/orbit"


def test_a_frame_is_encoded_once_as_sse() -> None:
    frame = hub().publish(event(7))
    assert frame.encoded is frame.encoded  # cached: shared by every connection
    text = frame.encoded.decode()
    assert text.startswith("id: 1\r\nevent: notification\r\ndata: {")
    assert text.endswith("\r\n\r\n")
    assert '"data": {"i": 7}' in text


async def test_a_lagging_stream_gets_its_queued_frames_in_one_write() -> None:
    from orbit_gateway.sse import _stream

    h = hub(history=10, client_queue=10)
    listener, backlog = h.attach(Filter(), None)
    frames = [h.publish(event(i)) for i in range(3)]
    stream = _stream(h, listener, backlog, {"user": "u"})
    hello = await anext(stream)
    assert isinstance(hello, ServerSentEvent) and hello.event == "hello"
    assert await anext(stream) == b"".join(f.encoded for f in frames)
    await stream.aclose()
    assert listener not in h.listeners
