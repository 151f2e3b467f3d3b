"""The aio-pika adapter's own logic, where a real node cannot stage the case on demand."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from orbit_amqp import ConnectionLost
from orbit_amqp.aiopika import _settle
from orbit_broker.local import free_port


async def test_an_ack_stuck_in_the_write_queue_fails_when_the_link_dies() -> None:
    """aiormq never resolves the drain of a frame still queued when its connection dies;
    the adapter must turn that into ``ConnectionLost`` at once, not wait forever."""
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    loop = asyncio.get_running_loop()
    channel_closed, connection_lost = loop.create_future(), loop.create_future()
    settle = asyncio.create_task(_settle(lambda: never, (channel_closed, connection_lost)))
    await asyncio.sleep(0.05)
    assert not settle.done()
    connection_lost.set_result(None)
    with pytest.raises(ConnectionLost):
        await asyncio.wait_for(settle, 1)
    assert never.cancelled()


async def test_a_sent_ack_returns() -> None:
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    await asyncio.wait_for(_settle(lambda: done, (lost,)), 1)


async def test_an_ack_on_a_closed_channel_fails_without_sending() -> None:
    lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    lost.set_result(None)
    sent: list[bool] = []

    async def ack() -> None:
        sent.append(True)

    with pytest.raises(ConnectionLost):
        await _settle(ack, (lost,))
    assert sent == []


async def test_a_cancelled_ack_stays_cancelled() -> None:
    """A shutdown that cancels the task mid-ack is not reported as a lost connection."""
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    settle = asyncio.create_task(_settle(lambda: never, (lost,)))
    await asyncio.sleep(0.05)
    settle.cancel()
    with pytest.raises(asyncio.CancelledError):
        await settle
    lost.set_result(None)  # a late loss must not cancel anything any more
    await asyncio.sleep(0)


_FAILED_CONNECT = """
import asyncio, gc, threading
from orbit_amqp.aiopika import AioPikaTransport
from orbit_protocol.errors import BrokerError
gc.disable()  # keep the failed connection's reference cycles for the collect below
loop = asyncio.new_event_loop()
try:
    loop.run_until_complete(AioPikaTransport().connect(URL, name="t", timeout=2))
except BrokerError as exc:
    print(exc)
collector = threading.Thread(target=gc.collect)  # a thread without an event loop
collector.start()
collector.join()
loop.close()
"""


def test_a_failed_connect_leaves_no_unawaited_close() -> None:
    """aio-pika's connection stays "open" when connecting fails; collected later in a thread
    with no event loop, its ``__del__`` leaves a ``close()`` coroutine never awaited. Run in
    a process of its own: pytest's log capture would keep the connection alive."""
    url = f"amqp://guest:guest@127.0.0.1:{free_port()}/"  # nothing listens there
    ran = subprocess.run(
        [sys.executable, "-W", "always", "-c", _FAILED_CONNECT.replace("URL", repr(url))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0 and "cannot reach" in ran.stdout, ran.stderr
    assert "never awaited" not in ran.stderr, ran.stderr


def test_tls_causes_are_named() -> None:
    from orbit_amqp.tlscause import tls_cause

    url = "amqps://u:p@broker.example:5671/orbit?cafile=%2Fca.pem&certfile=%2Fc.pem&keyfile=%2Fk"
    verify = OSError(
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"
        " in certificate chain (_ssl.c:1006)"
    )
    cause = tls_cause(RuntimeError("wrapped"), url)
    assert cause is None  # not a TLS problem
    wrapped = RuntimeError("error when creating transport")
    wrapped.__cause__ = verify
    assert "does not verify against the CA" in (tls_cause(wrapped, url) or "")
    assert "self-signed certificate in chain" not in (tls_cause(wrapped, url) or "x")
    mismatch = OSError(
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: IP address mismatch,"
        " certificate is not valid for '127.0.0.1'. (_ssl.c:1006)"
    )
    assert "not valid for 'broker.example'" in (tls_cause(mismatch, url) or "")
    old = OSError("[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version")
    assert "share no TLS version" in (tls_cause(old, url) or "")
    reset = ConnectionResetError(104, "Connection reset by peer")
    assert tls_cause(reset, url) is None  # it had a certificate: nothing to guess
    no_cert = url.split("&certfile")[0]
    assert "client certificate" in (tls_cause(reset, no_cert) or "")
    assert tls_cause(verify, url.replace("amqps://", "amqp://")) is None
