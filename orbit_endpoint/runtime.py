"""The endpoint process, wired: two supervised links, plugins, journal, presence, shutdown.

What happens to one request is :mod:`orbit_endpoint.lifecycle`; this module only connects
it to the links and runs the start and stop sequences. Order of start: journal → plugins
``setup`` → publishing link → recovery of journaled work → plugins ``start`` → the
endpoint's own client, if a plugin follows topology (:mod:`orbit_endpoint.outbound`) →
consuming link. Order of stop: stop consuming → wait for in-flight work (grace period; what
is left stays journaled and is recovered at the next start) → plugins ``stop`` → the own
client → ``offline`` presence → close links.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
from collections.abc import Coroutine
from typing import Any, Literal

from orbit_amqp import Connection, EntityNotFound, FatalLinkError, Link
from orbit_plugins.base import Plugin
from orbit_protocol import Presence, naming

from .allocation import batch_allocation
from .builtin import OrbitPlugin, orbit_version
from .context import EndpointContext, EventOutbox
from .journal import Journal
from .lifecycle import Lifecycle, Policy
from .outbound import Outbound
from .publisher import Publisher
from .recovery import Recovery
from .registry import LoadedPlugin, Registry, load
from .settings import EndpointSettings

log = logging.getLogger(__name__)
SHUTDOWN_GRACE = 10.0
POOL_PREFETCH = os.cpu_count() or 1
"""Un-acked pool deliveries a member holds (they are acked when answered): its capacity."""


class Endpoint:
    """Run with ``await Endpoint(settings).run()``; stop with :meth:`request_shutdown`."""

    def __init__(self, settings: EndpointSettings) -> None:
        self.settings = settings
        self.name = settings.name
        self.started_at = time.time()
        self.journal = Journal(settings.journal_path)
        self.plugins: dict[str, LoadedPlugin] = load(settings.plugins, settings.plugin_settings)
        self.plugins[naming.BUILTIN_PLUGIN] = LoadedPlugin(naming.BUILTIN_PLUGIN, OrbitPlugin(self))
        self.registry = Registry(self.plugins)
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        url = settings.url.get_secret_value()
        link = functools.partial(
            Link,
            url,
            heartbeat=settings.heartbeat,
            reconnect_min=settings.reconnect_min,
            reconnect_max=settings.reconnect_max,
        )
        self.publisher = Publisher(link, endpoint=self.name, user=settings.amqp_user)
        self.consumer_link = link(name=f"orbit-endpoint {self.name} consume", setup=self._consume)
        self.lifecycle = Lifecycle(
            self._policy(),
            self.journal,
            self.registry,
            self.publisher.reply,
            self.spawn,
            debug=settings.debug,
        )
        self.accepting = asyncio.Event()
        self.outbound = Outbound(url, self.spawn)

    def _policy(self) -> Policy:
        s = self.settings
        allowed = set(s.allowed_users) - {"*"}
        if not s.allowed_users:
            allowed.add(s.owner or s.amqp_user)
        return Policy(
            endpoint=self.name,
            routing_keys=frozenset([self.name, *map(naming.pool_routing_key, s.pools)]),
            allowed=frozenset(allowed),
            admins=frozenset(s.admins),
            allow_all="*" in s.allowed_users,
            max_body=s.max_body,
        )

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def cancel(self, request_id: str) -> bool:
        return self.lifecycle.cancel(request_id)

    def request_shutdown(self) -> None:
        self._stop.set()

    async def _consume(self, conn: Connection) -> None:
        channel = await conn.channel()
        await channel.set_prefetch(self.settings.prefetch)
        # a channel the broker closed takes its consumers along: reconnect the whole link
        channel.on_close(lambda _: None if conn.is_closed else self.spawn(conn.close()))
        queues = [naming.request_queue(self.name), *map(naming.pool_queue, self.settings.pools)]
        for name in queues:
            if name != queues[0]:  # per-consumer limit: a member takes what it can run
                await channel.set_prefetch(min(self.settings.prefetch, POOL_PREFETCH))
            try:
                await channel.declare_queue(name, passive=True)
            except EntityNotFound:
                raise RuntimeError(
                    f"queue {name} does not exist: provision it first"
                    f" (orbit broker provision --endpoint {self.name})"
                ) from None
            await channel.consume(name, self.lifecycle.receive)
        self.accepting.set()
        log.info("endpoint %s consuming %s", self.name, ", ".join(queues))

    # -- presence -----------------------------------------------------------------------

    def _presence(self, state: Literal["online", "offline"]) -> dict[str, Any]:
        return Presence(
            state=state,
            plugins={n: s.version for n, s in self.plugins.items()},
            version=orbit_version(),
            host=socket.gethostname(),
            heartbeat=float(self.settings.heartbeat),
            allocation=batch_allocation(os.environ),
        ).model_dump()

    async def _announce(self, state: Literal["online", "offline"]) -> None:
        """Persistent, so the last-seen queues of the directory keep it over a broker restart."""
        await self.publisher.event(
            naming.BUILTIN_PLUGIN, naming.PRESENCE_TOPIC, self._presence(state), persistent=True
        )

    async def _heartbeat(self) -> None:
        while True:
            await self.publisher.link.ready.wait()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.heartbeat):
                    await self._announce("online")
            await asyncio.sleep(self.settings.heartbeat)

    # -- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until :meth:`request_shutdown` (or a fatal link error, which is raised)."""
        loop = asyncio.get_running_loop()
        outbox = EventOutbox(self.publisher, loop)
        await self._setup_plugins(outbox)
        if "*" in self.settings.allowed_users:
            log.warning(
                "endpoint %s accepts requests from ANY broker user (allowed_users=*)", self.name
            )
        elif not self.settings.allowed_users:
            log.warning(
                "no allow-list given: endpoint %s accepts only its owner %r",
                self.name,
                self.settings.owner or self.settings.amqp_user,
            )
        links = [loop.create_task(self.publisher.link.run(), name="publish-link")]
        stopper = loop.create_task(self._stop.wait())
        ready = loop.create_task(self.publisher.link.ready.wait())
        await asyncio.wait([links[0], ready, stopper], return_when=asyncio.FIRST_COMPLETED)
        try:
            if links[0].done():
                links[0].result()  # raises FatalLinkError
            if not self._stop.is_set():
                Recovery(
                    self.lifecycle,
                    self.journal,
                    retention=self.settings.journal_retention,
                    resume_limit=self.settings.resume_limit,
                ).run()
                for slot in self.plugins.values():
                    if slot.plugin is not None:
                        await slot.plugin.start()
                await self._connect_outbound()
                self.spawn(self._heartbeat())
                self.spawn(outbox.drain())
                links.append(loop.create_task(self.consumer_link.run(), name="consume-link"))
                done, _ = await asyncio.wait([*links, stopper], return_when=asyncio.FIRST_COMPLETED)
                for task in done - {stopper}:
                    task.result()
        finally:
            ready.cancel()
            stopper.cancel()
            await self._shutdown(links, outbox)

    async def _setup_plugins(self, outbox: EventOutbox) -> None:
        for name, slot in self.plugins.items():
            if slot.plugin is None:
                continue
            state = self.settings.state_dir / self.name
            ctx = EndpointContext(self.name, name, state, outbox, self.outbound)
            try:
                await slot.plugin.setup(ctx)
            except Exception as exc:
                log.error("plugin %s failed to set up: %s", name, exc)
                slot.error, slot.plugin = f"{type(exc).__name__}: {exc}", None
                continue
            if type(slot.plugin).on_topology_change is not Plugin.on_topology_change:
                self.outbound.follow(slot.plugin)

    async def _connect_outbound(self) -> None:
        """Connect the endpoint's own client now if a plugin follows topology (a failure is
        logged: the plugins that need it get the error on their first ``ctx.client()``)."""
        if not self.outbound.wanted_at_start:
            return
        try:
            await self.outbound.client()
        except Exception as exc:
            log.error("the endpoint's own client could not connect: %s", exc)

    async def _shutdown(self, links: list[asyncio.Task[None]], outbox: EventOutbox) -> None:
        log.info("endpoint %s stopping", self.name)
        self.accepting.clear()
        await self.consumer_link.close()
        in_flight = [task for task, _ in self.lifecycle.running.values()]
        if in_flight:
            log.info(
                "waiting up to %.0f s for %d running request(s)", SHUTDOWN_GRACE, len(in_flight)
            )
            await asyncio.wait(in_flight, timeout=SHUTDOWN_GRACE)
        for slot in self.plugins.values():
            if slot.plugin is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(slot.plugin.stop(), SHUTDOWN_GRACE)
        await self.outbound.close()
        if self.publisher.link.ready.is_set():
            with contextlib.suppress(Exception):
                await outbox.flush(2.0)
                await asyncio.wait_for(self._announce("offline"), 5)
        for task in list(self._tasks):
            task.cancel()
        await self.publisher.link.close()
        for task in links:
            task.cancel()
        await asyncio.gather(*links, *self._tasks, return_exceptions=True)
        self.journal.close()
        log.info("endpoint %s stopped", self.name)


__all__ = ["Endpoint", "FatalLinkError"]
