"""``AsyncOrbitClient``: calls, events and presence over one supervised AMQP connection.

One :class:`~orbit_amqp.Link`, several channels: requests (publisher confirms,
``mandatory``), replies (one durable reply queue for every call of this client), one per
subscription, and short-lived ones for passive declares. After a reconnect (to the next
node of a cluster, if several URLs are given) the link's setup hook opens them again.
Replies are matched by ``correlation_id`` and accepted only from the addressed endpoint's
``user_id`` (learned from presence, or from the directory before the first presence).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from orbit_amqp import AccessRefused, Connection, ConnectionLost, Link, request_message
from orbit_protocol import (
    AuthenticationFailed,
    BrokerError,
    DeadlineExceeded,
    EndpointOffline,
    Event,
    NotAuthorized,
    PayloadTooLarge,
    Reply,
    Request,
    naming,
)
from orbit_protocol.topology import client_queue_arguments

from ._directory import DirectoryEntry, DirectoryReader
from ._online import OnlineCheck
from ._presence import EndpointInfo, PresenceTable, TopologyCallback
from ._proxy import AsyncPluginProxy
from ._replies import REPLY_PREFETCH, ReplyInbox
from ._requests import RequestSender
from ._subscription import Subscription, reattach
from .settings import ClientSettings

log = logging.getLogger(__name__)
_DEFAULT: Any = object()
EventCallback = Callable[[Event], Any]


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
        interval = self.settings.reconnect_interval
        self._several = len(self.settings.urls) > 1  # nodes of a cluster (publish retries)
        self._link = Link(
            self.settings.urls,
            name=f"orbit-client {self.user}",
            setup=self._setup,
            heartbeat=self.settings.heartbeat,
            reconnect_min=min(0.5, interval),
            reconnect_max=interval,
        )
        self._sender = RequestSender(self._link, self.user, self._spawn)
        self._subscriptions: list[Subscription] = []
        self._online = OnlineCheck(self.presence, self.user, self._link, self._connection)
        self._background: set[asyncio.Task[Any]] = set()
        self.session = naming.validate_name(session, "session") if session else None
        self.reply_queue = naming.reply_queue(self.user, self.session)
        self._directory = DirectoryReader(self.user, self._connection)
        self._inbox = ReplyInbox(
            self.presence, session=self.session is not None, lookup=self._directory.endpoint_user
        )
        self._connected = False

    # -- connection ---------------------------------------------------------------------

    async def connect(self) -> AsyncOrbitClient:
        try:
            await self._link.start()
        except AuthenticationFailed:
            raise AuthenticationFailed(
                f"the broker at {self.settings.safe_url} refused the credentials of {self.user!r}"
            ) from None
        except BrokerError as exc:
            raise BrokerError(
                f"cannot reach the broker at {self.settings.safe_url}: {exc}"
            ) from None
        self._connected = True
        await self._watch_presence()
        return self

    async def _setup(self, conn: Connection) -> None:
        """Open the request and reply channels and re-attach subscriptions (every connect)."""
        await self._sender.setup(conn)
        replies = await conn.channel()
        arguments = client_queue_arguments()
        if self.settings.quorum_replies:  # a classic queue dies with its node (docs/cluster.md)
            arguments["x-queue-type"] = "quorum"
        await replies.declare_queue(self.reply_queue, durable=True, arguments=arguments)
        await replies.bind(self.reply_queue, naming.REPLY_EXCHANGE, self.reply_queue)
        await replies.set_prefetch(REPLY_PREFETCH)
        self._inbox.reconnected()
        await replies.consume(self.reply_queue, self._inbox.take)
        await reattach(self._subscriptions, conn)

    def _connection(self) -> Connection:
        conn = self._link.connection
        if conn is None or conn.is_closed:
            if not self._connected:
                raise BrokerError("the client is not connected: use `async with` or connect()")
            raise ConnectionLost("not connected to the broker right now")
        return conn

    async def _watch_presence(self) -> None:
        sub = await self._online.watch()
        self._subscriptions.append(sub)
        self._spawn(self._online.feed(sub))

    async def close(self) -> None:
        for sub in list(self._subscriptions):
            await sub.close()
        for task in self._background:
            task.cancel()
        self._inbox.cancel_all()
        await self._link.close()
        self._connected = False

    aclose = close

    async def __aenter__(self) -> AsyncOrbitClient:
        return await self.connect()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- calls --------------------------------------------------------------------------

    async def is_online(self, endpoint: str) -> bool:
        """Presence seen recently, or a consumer on ``orbit.ep.<endpoint>`` right now."""
        return await self._online.is_online(endpoint)

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
        future = self._inbox.expect(corr, endpoint)
        try:
            await self._publish(endpoint, operation, body, corr, idempotency_key, timeout)
            return await self._reply(future, timeout, f"from {endpoint!r} to {operation}", corr)
        finally:
            self._inbox.forget(corr)

    @staticmethod
    async def _reply(
        future: asyncio.Future[Reply], timeout: float | None, what: str, corr: str
    ) -> Reply:
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise DeadlineExceeded(
                f"no reply {what} within {timeout} s", {"request_id": corr}
            ) from None

    async def _prepare(
        self,
        endpoint: str,
        operation: str,
        args: dict[str, Any] | None,
        timeout: float | None,
        wait_for_endpoint: bool,
    ) -> tuple[bytes, float | None]:
        """Encode and size-check the body, resolve the default timeout, fail fast if offline."""
        naming.validate_name(endpoint)
        body = self._encode(operation, args)
        if timeout is _DEFAULT:
            timeout = self.settings.timeout
        self._sender.refuse_if_blocked(endpoint)  # before the online check, which needs the wire
        if not wait_for_endpoint and not await self.is_online(endpoint):
            raise EndpointOffline(f"endpoint {endpoint!r} is offline (no consumer on its queue)")
        return body, timeout

    def _encode(self, operation: str, args: dict[str, Any] | None) -> bytes:
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
    ) -> None:
        if not self._connected:
            raise BrokerError("the client is not connected: use `async with` or connect()")
        message = request_message(
            body,
            request_id=corr,
            reply_to=self.reply_queue,
            user=self.user,
            operation=operation,
            timeout=timeout,
            idempotency_key=key,
        )
        await self._sender.publish(endpoint, message, timeout, several_nodes=self._several)

    async def pool_request(
        self,
        pool: str,
        operation: str,
        args: dict[str, Any] | None = None,
        *,
        timeout: float | None = _DEFAULT,
    ) -> Reply:
        """Send ``operation`` to whichever member of pool ``pool`` takes it (routing key
        ``pool.<pool>``) and return its reply; no online check (members come and go)."""
        naming.validate_name(pool, "pool")
        if timeout is _DEFAULT:
            timeout = self.settings.timeout
        key = naming.pool_routing_key(pool)
        body = self._encode(operation, args)
        corr = uuid.uuid4().hex
        future = self._inbox.expect(corr, "")
        try:
            await self._publish(key, operation, body, corr, None, timeout)
            return await self._reply(future, timeout, f"from pool {pool!r} to {operation}", corr)
        finally:
            self._inbox.forget(corr)

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
        await self._publish(endpoint, operation, body, corr, idempotency_key, timeout)
        return corr

    async def collect(self, request_id: str, timeout: float | None = _DEFAULT) -> Reply:
        """The reply to a request sent earlier by :meth:`send` (possibly by another client
        of the same session); raises ``DeadlineExceeded`` after ``timeout``."""
        if timeout is _DEFAULT:
            timeout = self.settings.timeout
        if (reply := await self._inbox.claim(request_id)) is not None:
            return reply
        future = self._inbox.expect(request_id, "")
        try:
            return await self._reply(future, timeout, f"to request {request_id}", request_id)
        finally:
            self._inbox.forget(request_id)

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
        """Events matching the filter, as an async iterator (``None`` matches anything).

        Raises :class:`~orbit_protocol.NotAuthorized` when the broker does not let this
        user follow them (topic permissions)."""

        async def release() -> None:  # a closed subscription is not re-attached
            with contextlib.suppress(ValueError):
                self._subscriptions.remove(sub)

        pattern = naming.event_pattern(endpoint, plugin, topic)
        sub = Subscription(self.user, [pattern], on_close=release)
        try:
            await sub.attach(self._connection())
        except AccessRefused as exc:
            raise NotAuthorized(
                f"the broker does not let {self.user!r} follow {pattern!r}: {exc}"
            ) from None
        self._subscriptions.append(sub)
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
        self._spawn(sub.feed(callback))
        return sub

    def register_topology_callback(self, callback: TopologyCallback) -> None:
        """Call ``callback(endpoint, info)`` whenever an endpoint comes online or goes offline."""
        self.presence.callbacks.append(callback)

    async def directory(self) -> list[DirectoryEntry]:
        """Every endpoint and pool granted to this user, online or not (docs/directory.md);
        ``NotFound`` for a user the broker keeps no directory for (see :meth:`endpoints`)."""
        entries = await self._directory.read()
        for entry in entries:
            if entry.kind == "endpoint":
                await self._online.follow(entry.name)  # live presence from now on
        return entries

    @property
    def dropped_replies(self) -> int:
        """Replies dropped because they came from another user than the addressed endpoint."""
        return self._inbox.dropped

    def endpoints(self) -> dict[str, EndpointInfo]:
        """Endpoints seen through presence so far (refreshed every heartbeat)."""
        return dict(self.presence.endpoints)

    async def wait_for_endpoints(self, timeout: float | None = None) -> dict[str, EndpointInfo]:
        """Wait one heartbeat interval (or ``timeout``) so every live endpoint is seen."""
        await asyncio.sleep(self.settings.heartbeat + 1 if timeout is None else timeout)
        return self.endpoints()


__all__ = ["AsyncOrbitClient"]
