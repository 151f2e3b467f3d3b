"""``AsyncOrbitClient``: calls, events and presence over one AMQP connection (aio-pika).

One connection, three channels: requests (publisher confirms, ``mandatory``), replies
(one durable reply queue for every call of this client) and control (passive declares,
subscriptions). Replies are matched by ``correlation_id`` and accepted only from the
addressed endpoint's ``user_id`` once the client has learned it from presence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import aiormq.exceptions
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)

from orbit_protocol import (
    AuthenticationFailed,
    BrokerError,
    DeadlineExceeded,
    EndpointBusy,
    EndpointOffline,
    Event,
    NotAuthorized,
    PayloadTooLarge,
    Reply,
    Request,
    decode_reply,
    naming,
)
from orbit_protocol.headers import CONTENT_TYPE, DEADLINE_HEADER, VERSION_HEADER
from orbit_protocol.topology import client_queue_arguments
from orbit_protocol.version import PROTOCOL_VERSION

from ._connection import connect_failover
from ._presence import EndpointInfo, PresenceTable, TopologyCallback
from ._proxy import AsyncPluginProxy
from ._subscription import Subscription
from .settings import ClientSettings

log = logging.getLogger(__name__)
_DEFAULT: Any = object()
MAX_UNCLAIMED = 10_000
REPLY_PREFETCH = 256
HELD_UNCLAIMED = REPLY_PREFETCH // 2
"""Unclaimed session replies kept unacknowledged (they return to the session queue if this
client closes before ``collect()``); beyond this many they are acked and kept in memory
only, so that replies to this client's own calls can still arrive within the prefetch."""
PUBLISH_RETRY_PAUSE = 0.2
RETRY_WINDOW = 10.0  # s: how long a nacked publish or an online check is retried
_CONNECTION_LOST = (ConnectionError, aiormq.exceptions.ChannelInvalidStateError)
EventCallback = Callable[[Event], Any]


@dataclass
class _Pending:
    future: asyncio.Future[Reply]
    endpoint: str


class AsyncOrbitClient:
    """Talk to Orbit endpoints. Use as ``async with AsyncOrbitClient() as client:``."""

    def __init__(
        self,
        settings: ClientSettings | None = None,
        *,
        session: str | None = None,
        **overrides: Any,
    ) -> None:
        """``session`` names a durable reply queue that outlives this client: a later client
        with the same user and session receives the replies (see :meth:`collect`)."""
        self.settings = settings or ClientSettings(**overrides)
        self.user = self.settings.user
        self.presence = PresenceTable()
        self._pending: dict[str, _Pending] = {}
        self._queue_seen: dict[str, float] = {}
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._control: AbstractChannel | None = None
        self._channels: list[AbstractChannel] = []
        self._subscriptions: list[Subscription] = []
        self._presence_sub: Subscription | None = None
        self._followed: set[str] | None = None
        """Endpoints whose presence is bound one by one; None: the wildcard binding works."""
        self._background: set[asyncio.Task[Any]] = set()
        self.session = naming.validate_name(session, "session") if session else None
        self.reply_queue = naming.reply_queue(self.user, self.session)
        self._unclaimed: dict[str, Reply] = {}
        self._held: dict[str, AbstractIncomingMessage] = {}
        """Deliveries of unclaimed session replies kept unacknowledged (HELD_UNCLAIMED)."""

    # -- connection ---------------------------------------------------------------------

    async def connect(self) -> AsyncOrbitClient:
        try:
            self._connection = await connect_failover(
                self.settings.urls,
                heartbeat=self.settings.heartbeat,
                reconnect_interval=self.settings.reconnect_interval,
                client_properties={"connection_name": f"orbit-client {self.user}"},
                timeout=10,
            )
        except aiormq.exceptions.ProbableAuthenticationError:
            raise AuthenticationFailed(
                f"the broker at {self.settings.safe_url} refused the credentials of {self.user!r}"
            ) from None
        except (OSError, aiormq.exceptions.AMQPError) as exc:
            raise BrokerError(
                f"cannot reach the broker at {self.settings.safe_url}: {exc}"
            ) from None
        # no Exchange object: a robust channel would re-declare it on reconnect (as direct)
        publish = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        self._publish_channel = publish
        replies = await self._connection.channel()
        arguments = client_queue_arguments()
        if self.settings.quorum_replies:  # a classic queue dies with its node (docs/cluster.md)
            arguments["x-queue-type"] = "quorum"
        queue = await replies.declare_queue(self.reply_queue, durable=True, arguments=arguments)
        await queue.bind(naming.REPLY_EXCHANGE, self.reply_queue)
        await replies.set_qos(prefetch_count=REPLY_PREFETCH)
        await queue.consume(self._take_reply)
        self._control = await self._connection.channel()
        self._channels = [publish, replies, self._control]
        await self._watch_presence()
        return self

    async def _watch_presence(self) -> None:
        assert self._control is not None
        pattern = naming.event_pattern(None, naming.BUILTIN_PLUGIN, naming.PRESENCE_TOPIC)
        sub = Subscription(self._control, self.user, [pattern])
        try:
            await sub.start()
        except aiormq.exceptions.ChannelAccessRefused:
            # a provisioned client may read only its granted endpoints' events: follow
            # each endpoint's presence when it is first called (see _follow_presence)
            log.debug("no wildcard presence binding for %s; following per endpoint", self.user)
            self._control = await self._fresh_channel()
            sub = Subscription(self._control, self.user, [])
            await sub.start()
            self._followed = set()
        self._presence_sub = sub
        self._subscriptions.append(sub)
        self._spawn(self._feed_presence(sub))

    async def _follow_presence(self, endpoint: str) -> None:
        """Bind ``<endpoint>.orbit.presence`` for a client without the wildcard binding."""
        if self._followed is None or endpoint in self._followed or self._presence_sub is None:
            return
        self._followed.add(endpoint)
        channel = await self._fresh_channel()
        try:
            queue = await channel.get_queue(self._presence_sub.queue_name, ensure=False)
            await queue.bind(naming.EVENT_EXCHANGE, naming.presence_routing_key(endpoint))
        except aiormq.exceptions.ChannelAccessRefused:
            log.debug("%s may not follow the presence of %s", self.user, endpoint)
        finally:
            self._channels.remove(channel)
            with contextlib.suppress(Exception):
                await channel.close()

    async def _feed_presence(self, sub: Subscription) -> None:
        while True:
            try:
                event, sender = await sub.get_with_sender()
            except StopAsyncIteration:  # the client is closing
                return
            with contextlib.suppress(ValueError):
                self.presence.update(event, sender)

    async def _fresh_channel(self) -> AbstractChannel:
        assert self._connection is not None
        channel = await self._connection.channel()
        self._channels.append(channel)
        return channel

    async def close(self) -> None:
        for sub in list(self._subscriptions):
            await sub.close()
        for task in self._background:
            task.cancel()
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.cancel()
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    aclose = close

    async def __aenter__(self) -> AsyncOrbitClient:
        return await self.connect()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- replies ------------------------------------------------------------------------

    async def _take_reply(self, message: AbstractIncomingMessage) -> None:
        """Acknowledge each reply after it is handled: one in flight when the connection
        (or its node) dies is delivered again after the reconnect, not lost."""
        held = False
        try:
            held = await self._on_reply(message)
        finally:
            if not held:
                with contextlib.suppress(Exception):  # channel gone: the broker redelivers it
                    await message.ack()

    async def _on_reply(self, message: AbstractIncomingMessage) -> bool:
        """Handle one reply; ``True`` when it is held unacknowledged for :meth:`collect`."""
        corr = message.correlation_id or ""
        pending = self._pending.get(corr)
        if pending is None:
            if self.session is None or not corr:
                log.debug("dropping reply for unknown correlation id %s", corr)
                return False
            # a reply for collect(), maybe by a later client of the session: hold it unacked
            # so that it goes back to the session queue if this client closes first
            held = len(self._held) < HELD_UNCLAIMED
            self._unclaimed[corr] = decode_reply(message.body)
            if held:
                self._held[corr] = message
            while len(self._unclaimed) > MAX_UNCLAIMED:  # the oldest is forgotten (unacked
                oldest = next(iter(self._unclaimed))  # if held: back to the queue on close)
                del self._unclaimed[oldest]
                self._held.pop(oldest, None)
            return held
        expected = self.presence.expected_user(pending.endpoint) if pending.endpoint else None
        if expected is not None and message.user_id not in (expected, naming.RESPONDER_USER):
            log.warning(
                "dropping reply to %s from user %r (endpoint %s is %r)",
                message.correlation_id,
                message.user_id,
                pending.endpoint,
                expected,
            )
            return False
        if not pending.future.done():
            pending.future.set_result(decode_reply(message.body))
        return False

    # -- calls --------------------------------------------------------------------------

    async def is_online(self, endpoint: str) -> bool:
        """Presence seen recently, or a consumer on ``orbit.ep.<endpoint>`` right now."""
        if self.presence.online(endpoint):
            return True
        await self._follow_presence(endpoint)
        if time.monotonic() - self._queue_seen.get(endpoint, -1e9) < 2.0:
            return True
        return await self._consumers(endpoint) > 0

    async def _consumers(self, endpoint: str) -> int:
        """Consumers on the endpoint's queue (passive declare); waits out a reconnect."""
        until = time.monotonic() + RETRY_WINDOW
        while True:
            try:
                return await self._consumers_once(endpoint)
            except _CONNECTION_LOST as exc:
                if self._connection is None or time.monotonic() > until:
                    raise BrokerError(f"lost the broker connection: {exc}") from None
                await asyncio.sleep(PUBLISH_RETRY_PAUSE)

    async def _consumers_once(self, endpoint: str) -> int:
        channel = await self._fresh_channel()
        try:
            queue = await channel.declare_queue(naming.request_queue(endpoint), passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            raise EndpointOffline(
                f"endpoint {endpoint!r} does not exist on this broker (no queue"
                f" {naming.request_queue(endpoint)}; was it provisioned?)"
            ) from None
        finally:
            self._channels.remove(channel)
            with contextlib.suppress(Exception):
                await channel.close()
        count = queue.declaration_result.consumer_count or 0
        if count:
            self._queue_seen[endpoint] = time.monotonic()
        return count

    async def call(
        self,
        endpoint: str,
        operation: str,
        /,
        *,
        timeout: float | None = _DEFAULT,
        idempotency_key: str | None = None,
        wait_for_endpoint: bool = False,
        **args: Any,
    ) -> Any:
        """Call ``plugin.method`` on ``endpoint`` and return its result (or raise its error).

        ``timeout`` bounds the whole call and travels as the request's deadline;
        ``wait_for_endpoint=True`` queues the call for an offline endpoint instead of
        raising :class:`~orbit_protocol.EndpointOffline` at once.
        """
        reply = await self.request(
            endpoint,
            operation,
            args,
            timeout=timeout,
            idempotency_key=idempotency_key,
            wait_for_endpoint=wait_for_endpoint,
        )
        return reply.unwrap()

    async def request(
        self,
        endpoint: str,
        operation: str,
        args: dict[str, Any] | None = None,
        *,
        timeout: float | None = _DEFAULT,
        idempotency_key: str | None = None,
        wait_for_endpoint: bool = False,
        request_id: str | None = None,
    ) -> Reply:
        """Like :meth:`call` but returns the :class:`~orbit_protocol.Reply` itself."""
        body, timeout = await self._prepare(endpoint, operation, args, timeout, wait_for_endpoint)
        corr = request_id or uuid.uuid4().hex
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[corr] = _Pending(future, endpoint)
        try:
            await self._publish(
                endpoint, operation, body, corr, idempotency_key, timeout, wait_for_endpoint
            )
            try:
                return await asyncio.wait_for(future, timeout)
            except TimeoutError:
                raise DeadlineExceeded(
                    f"no reply from {endpoint!r} to {operation} within {timeout} s",
                    {"request_id": corr},
                ) from None
        finally:
            self._pending.pop(corr, None)

    async def _prepare(
        self,
        endpoint: str,
        operation: str,
        args: dict[str, Any] | None,
        timeout: float | None,
        wait_for_endpoint: bool,
    ) -> tuple[bytes, float | None]:
        """Encode and size-check the body, resolve the default timeout, fail fast if offline."""
        body = self._encode(endpoint, operation, args)
        if timeout is _DEFAULT:
            timeout = self.settings.timeout
        self._refuse_if_blocked(endpoint)  # before the online check, which needs the wire
        if not wait_for_endpoint and not await self.is_online(endpoint):
            raise EndpointOffline(f"endpoint {endpoint!r} is offline (no consumer on its queue)")
        return body, timeout

    def _encode(self, endpoint: str, operation: str, args: dict[str, Any] | None) -> bytes:
        naming.validate_name(endpoint)
        plugin, _, method = operation.partition(".")
        body = Request(plugin=plugin, method=method, args=args or {}).to_bytes()
        if len(body) > self.settings.max_body:
            raise PayloadTooLarge(
                f"request is {len(body)} bytes; the limit is {self.settings.max_body}"
                " (move data with the staging plugin)",
                {"size": len(body), "limit": self.settings.max_body},
            )
        return body

    async def _publish(
        self,
        endpoint: str,
        operation: str,
        body: bytes,
        corr: str,
        key: str | None,
        timeout: float | None,
        wait_for_endpoint: bool,
    ) -> None:
        headers: dict[str, Any] = {VERSION_HEADER: PROTOCOL_VERSION}
        if timeout is not None:
            headers[DEADLINE_HEADER] = int((time.time() + timeout) * 1000)
        message = aio_pika.Message(
            body,
            content_type=CONTENT_TYPE,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            correlation_id=corr,
            message_id=key or corr,
            reply_to=self.reply_queue,
            user_id=self.user,
            type=operation,
            headers=headers,
            expiration=timeout,
        )
        if self._publish_channel is None:
            raise BrokerError("the client is not connected: use `async with` or connect()")
        deadline = None if timeout is None else time.monotonic() + timeout
        nacks_until = time.monotonic() + min(RETRY_WINDOW, timeout or RETRY_WINDOW)
        while True:
            channel = self._publish_channel
            try:
                return await self._publish_once(message, endpoint, timeout)
            except EndpointBusy:
                # With several nodes a nack may also come from a channel that registered with
                # the queue while its leader moved: RabbitMQ 3.10 then refuses every publish
                # on that channel. Retry on a fresh channel for a while before calling it full.
                if len(self.settings.urls) < 2 or time.monotonic() > nacks_until:
                    raise
                log.info("request %s refused (nack); publishing it again", corr)
                await self._renew_publish_channel(channel)
                await asyncio.sleep(PUBLISH_RETRY_PAUSE)
            except _CONNECTION_LOST as exc:
                # the connection (or its node) died mid-publish: publish again, same request
                # id and idempotency key, once reconnected; the endpoint's journal answers a
                # copy that did arrive once, and runs it once
                if self._connection is None or (
                    deadline is not None and time.monotonic() > deadline
                ):
                    raise BrokerError(
                        f"lost the broker connection while publishing to {endpoint!r}: {exc}",
                        {"request_id": corr},
                    ) from None
                log.info("connection lost publishing %s (%s); publishing it again", corr, exc)
                await asyncio.sleep(PUBLISH_RETRY_PAUSE)

    async def _renew_publish_channel(self, failed: AbstractChannel | None) -> None:
        """Replace the request channel ``failed`` (unless already replaced)."""
        if failed is None or self._publish_channel is not failed or self._connection is None:
            return
        fresh = self._connection.channel(publisher_confirms=True, on_return_raises=True)
        self._publish_channel = fresh
        await fresh
        self._channels = [fresh if c is failed else c for c in self._channels]

        async def close_later() -> None:  # publishes still waiting on it get their answer
            await asyncio.sleep(RETRY_WINDOW)
            with contextlib.suppress(Exception):
                await failed.close()

        self._spawn(close_later())

    def _refuse_if_blocked(self, endpoint: str) -> None:
        """Fail fast while the broker blocks this connection (``connection.blocked``: a
        memory or disk alarm): nothing is published, so nothing can run later by surprise.
        A request published just before the block waits for the alarm to clear."""
        transport = self._connection.transport if self._connection is not None else None
        amqp = transport.connection if transport is not None else None
        # aiormq keeps the state in a private event; without it there is no fast path
        unblocked = getattr(amqp, "_Connection__connection_unblocked", None)
        if isinstance(unblocked, asyncio.Event) and not unblocked.is_set():
            raise EndpointBusy(
                f"the broker is refusing new messages (memory or disk alarm), so the request"
                f" to {endpoint!r} was not sent; try again when the alarm clears",
                {"reason": "broker_blocked"},
            )

    async def _publish_once(
        self, message: aio_pika.Message, endpoint: str, timeout: float | None
    ) -> None:
        assert self._publish_channel is not None
        try:
            channel = await self._publish_channel.get_underlay_channel()
            await channel.basic_publish(
                message.body,
                exchange=naming.REQUEST_EXCHANGE,
                routing_key=endpoint,
                properties=message.properties,
                mandatory=True,
                timeout=timeout,
            )
        except aiormq.exceptions.PublishError:
            raise EndpointOffline(
                f"endpoint {endpoint!r} is not provisioned: nothing is bound to key {endpoint!r}"
            ) from None
        except aiormq.exceptions.DeliveryError:
            raise EndpointBusy(
                f"endpoint {endpoint!r} has a full request queue; try later"
            ) from None
        except aiormq.exceptions.ChannelAccessRefused:
            raise NotAuthorized(
                f"the broker refused {self.user!r} publishing to endpoint {endpoint!r}"
                " (no grant: ask an admin for `orbit broker grant`)"
            ) from None
        except TimeoutError:  # no confirm in time: a blocked broker (alarm), or overload
            raise DeadlineExceeded(
                f"the broker did not confirm the request to {endpoint!r} within {timeout} s"
                " (blocked by a memory or disk alarm, or overloaded); it expires unanswered"
                " if it was queued",
                {"reason": "unconfirmed"},
            ) from None

    async def send(
        self,
        endpoint: str,
        operation: str,
        args: dict[str, Any] | None = None,
        *,
        timeout: float | None = _DEFAULT,
        idempotency_key: str | None = None,
        wait_for_endpoint: bool = False,
    ) -> str:
        """Publish a request without waiting; returns its request id for :meth:`collect`.

        Use with a ``session`` client: the reply waits in the session's durable reply
        queue even if this client disconnects first.
        """
        body, timeout = await self._prepare(endpoint, operation, args, timeout, wait_for_endpoint)
        corr = uuid.uuid4().hex
        await self._publish(
            endpoint, operation, body, corr, idempotency_key, timeout, wait_for_endpoint
        )
        return corr

    async def collect(self, request_id: str, timeout: float | None = _DEFAULT) -> Reply:
        """The reply to a request sent earlier by :meth:`send` (possibly by another client
        of the same session); raises ``DeadlineExceeded`` after ``timeout``."""
        if timeout is _DEFAULT:
            timeout = self.settings.timeout
        if request_id in self._unclaimed:
            reply = self._unclaimed.pop(request_id)
            if (message := self._held.pop(request_id, None)) is not None:
                with contextlib.suppress(Exception):  # channel gone: it waits in the queue
                    await message.ack()
            return reply
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = _Pending(future, "")
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise DeadlineExceeded(
                f"no reply to request {request_id} within {timeout} s", {"request_id": request_id}
            ) from None
        finally:
            self._pending.pop(request_id, None)

    def plugin(self, endpoint: str, plugin: str) -> AsyncPluginProxy:
        """``await client.plugin("hpc1", "sysinfo").metrics()``."""
        return AsyncPluginProxy(self, endpoint, plugin)

    # -- events and presence ------------------------------------------------------------

    async def subscribe(
        self,
        endpoint: str | None = None,
        plugin: str | None = None,
        topic: str | None = None,
    ) -> Subscription:
        """Events matching the filter, as an async iterator (``None`` matches anything)."""
        channel = await self._fresh_channel()

        async def release() -> None:  # a closed subscription gives its channel back
            with contextlib.suppress(ValueError):
                self._subscriptions.remove(sub)
            with contextlib.suppress(ValueError):
                self._channels.remove(channel)
            with contextlib.suppress(Exception):
                await channel.close()

        pattern = naming.event_pattern(endpoint, plugin, topic)
        sub = Subscription(channel, self.user, [pattern], on_close=release)
        self._subscriptions.append(sub)
        try:
            await sub.start()
        except BaseException:
            await sub.close()
            raise
        return sub

    async def register_callback(
        self,
        callback: EventCallback,
        endpoint: str | None = None,
        plugin: str | None = None,
        topic: str | None = None,
    ) -> Subscription:
        """Call ``callback(event)`` (plain or async) for each matching event, as in the seed."""
        sub = await self.subscribe(endpoint, plugin, topic)

        async def pump() -> None:
            async for event in sub:
                try:
                    result = callback(event)
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:
                    log.exception("event callback failed")

        self._spawn(pump())
        return sub

    def register_topology_callback(self, callback: TopologyCallback) -> None:
        """Call ``callback(endpoint, info)`` whenever an endpoint comes online or goes offline."""
        self.presence.callbacks.append(callback)

    def endpoints(self) -> dict[str, EndpointInfo]:
        """Endpoints seen through presence so far (refreshed every heartbeat)."""
        return dict(self.presence.endpoints)

    async def wait_for_endpoints(self, timeout: float | None = None) -> dict[str, EndpointInfo]:
        """Wait one heartbeat interval (or ``timeout``) so every live endpoint is seen."""
        await asyncio.sleep(self.settings.heartbeat + 1 if timeout is None else timeout)
        return self.endpoints()


__all__ = ["AsyncOrbitClient"]
