"""Wire format of protocol v1 (docs/protocol.md), without a broker."""

import json

import pytest

from orbit_protocol import (
    BadRequest,
    ErrorCode,
    Event,
    InternalError,
    NotFound,
    OrbitError,
    Reply,
    Request,
    decode_reply,
    decode_request,
    error_for,
    naming,
)
from orbit_protocol.errors import ERRORS_BY_CODE
from orbit_protocol.topology import endpoint, work_queue_arguments


def test_names() -> None:
    assert naming.request_queue("hpc1") == "orbit.ep.hpc1"
    assert naming.pool_queue("gpu") == "orbit.pool.gpu"
    assert naming.pool_routing_key("gpu") == "pool.gpu"
    assert naming.reply_queue("alice", "abc") == "orbit.reply.alice.abc"
    assert naming.subscription_queue("alice", "abc") == "orbit.sub.alice.abc"
    assert naming.event_routing_key("hpc1", "psij", "job_status") == "hpc1.psij.job_status"
    assert naming.presence_routing_key("hpc1") == "hpc1.orbit.presence"
    assert naming.event_pattern(None, "orbit", "presence") == "*.orbit.presence"
    assert naming.split_event_key("a.b.c") == ("a", "b", "c")


@pytest.mark.parametrize("bad", ["", "Hpc", "a.b", "-x", "x" * 64, "a b", "é"])
def test_invalid_names_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid endpoint name"):
        naming.request_queue(bad)


def test_queue_arguments_exact() -> None:
    args = dict(work_queue_arguments())
    assert args == {
        "x-queue-type": "quorum",
        "x-single-active-consumer": True,
        "x-delivery-limit": 5,
        "x-dead-letter-exchange": "orbit.dlx",
        "x-dead-letter-routing-key": "orbit.dead",
        "x-dead-letter-strategy": "at-least-once",
        "x-max-length": 100000,
        "x-overflow": "reject-publish",
        "x-message-ttl": 86400000,
    }
    topo = endpoint("hpc1")
    assert topo.bindings[0].exchange == "orbit.requests"
    assert topo.bindings[0].routing_key == "hpc1"


def test_request_round_trip() -> None:
    body = Request(plugin="psij", method="submit_job", args={"spec": {"x": 1}}).to_bytes()
    assert json.loads(body) == {
        "v": 1,
        "plugin": "psij",
        "method": "submit_job",
        "args": {"spec": {"x": 1}},
    }
    assert decode_request(body).operation == "psij.submit_job"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "not UTF-8 JSON"),
        (b"[1]", "JSON object"),
        (b'{"v": 2, "plugin": "a", "method": "b"}', "unsupported protocol version 2"),
        (b'{"plugin": "a", "method": "b"}', "unsupported protocol version None"),
        (b'{"v": 1, "plugin": "a"}', "method"),
        (b'{"v": 1, "plugin": "a.b", "method": "c"}', "plugin"),
        (b'{"v": 1, "plugin": "a", "method": "b", "arguments": {}}', "arguments"),
        (b'{"v": 1, "plugin": "a", "method": "b", "args": []}', "args"),
        (b"\xff\xfe", "not UTF-8 JSON"),
    ],
)
def test_bad_requests(body: bytes, fragment: str) -> None:
    with pytest.raises(BadRequest) as info:
        decode_request(body)
    assert fragment in str(info.value)
    assert info.value.code is ErrorCode.BAD_REQUEST


def test_reply_shapes() -> None:
    assert json.loads(Reply.success({"a": 1}).to_bytes()) == {
        "v": 1,
        "ok": True,
        "result": {"a": 1},
    }
    failed = json.loads(Reply.failure(NotFound("gone", {"id": 3})).to_bytes())
    assert failed == {
        "v": 1,
        "ok": False,
        "error": {"code": "NOT_FOUND", "message": "gone", "details": {"id": 3}},
    }
    with pytest.raises(NotFound, match="gone"):
        decode_reply(json.dumps(failed).encode()).unwrap()


def test_malformed_reply_becomes_internal() -> None:
    reply = decode_reply(b'{"ok": "maybe"}')
    with pytest.raises(InternalError, match="malformed reply"):
        reply.unwrap()


def test_every_code_has_one_class() -> None:
    assert set(ERRORS_BY_CODE) == set(ErrorCode)
    for code, cls in ERRORS_BY_CODE.items():
        err = error_for(code.value, "m", {"k": 1})
        assert type(err) is cls and isinstance(err, OrbitError)
        assert err.details == {"k": 1}
    unknown = error_for("NEW_CODE", "m")
    assert isinstance(unknown, InternalError) and unknown.details["unknown_code"] == "NEW_CODE"


def test_event_body() -> None:
    event = Event(endpoint="hpc1", plugin="psij", topic="job_status", ts=1.5, data={"s": 1})
    assert json.loads(event.to_bytes()) == {
        "v": 1,
        "endpoint": "hpc1",
        "plugin": "psij",
        "topic": "job_status",
        "ts": 1.5,
        "data": {"s": 1},
    }
