"""The endpoint process: two supervised links, plugins, journal, presence, shutdown.

Order of start: journal → plugins ``setup`` → publishing link → recovery of journaled
work → plugins ``start`` → consuming link. Order of stop: stop consuming → wait for
in-flight work (grace period; what is left stays journaled and is recovered at the next
start) → plugins ``stop`` → ``offline`` presence → close links.
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

import aiormq.exceptions
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage

from orbit_plugins.base import Call
from orbit_protocol import (
    InternalError,
    OrbitError,
    PayloadTooLarge,
    PoisonMessage,
    Presence,
    Reply,
    Request,
    naming,
)

from .allocation import batch_allocation
from .builtin import OrbitPlugin, orbit_version
from .consumer import Accepted, Intake, Policy
from .context import EndpointContext, EventOutbox
from .dispatcher import Dispatcher
from .journal import Entry, Journal
from .link import FatalLinkError, Link
from .publisher import Publisher
from .registry import LoadedPlugin, load
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
        self.dispatcher = Dispatcher(self.plugins, debug=settings.debug)
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running: dict[str, tuple[asyncio.Task[Any], Call]] = {}
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
        self.intake = Intake(
            self._policy(), self.journal, self.publisher.reply, self.spawn, self._journals_args
        )
        self.accepting = asyncio.Event()

    def _journals_args(self, plugin: str, method: str) -> bool:
        try:
            return self.dispatcher.resolve(plugin, method)[1].journal
        except OrbitError:
            return True  # the error reply is small and deterministic

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

    # -- task bookkeeping ---------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def cancel(self, request_id: str) -> bool:
        running = self._running.get(request_id)
        if running is None:
            return False
        task, call = running
        call.cancel()
        task.cancel()
        return True

    def request_shutdown(self) -> None:
        self._stop.set()

    # -- consuming ----------------------------------------------------------------------

    async def _consume(self, conn: AbstractConnection) -> None:
        channel = await conn.channel()
        await channel.set_qos(prefetch_count=self.settings.prefetch)
        channel.close_callbacks.add(lambda *_: None if conn.is_closed else self.spawn(conn.close()))
        queues = [naming.request_queue(self.name), *map(naming.pool_queue, self.settings.pools)]
        for name in queues:
            if name != queues[0]:  # per-consumer limit: a member takes what it can run
                await channel.set_qos(prefetch_count=min(self.settings.prefetch, POOL_PREFETCH))
            try:
                queue = await channel.declare_queue(name, passive=True)
            except aiormq.exceptions.ChannelNotFoundEntity:
                raise RuntimeError(
                    f"queue {name} does not exist: provision it first"
                    f" (orbit broker provision --endpoint {self.name})"
                ) from None
            await queue.consume(self._on_message, no_ack=False)
        self.accepting.set()
        log.info("endpoint %s consuming %s", self.name, ", ".join(queues))

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # a closing channel cancels its consumer callbacks (aiormq): the journal write, the
        # ack and the start of accepted work must not be cut apart, so they run shielded
        await asyncio.shield(self._take(message))

    async def _take(self, message: AbstractIncomingMessage) -> None:
        try:
            accepted = await self.intake.receive(message)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # we are being cancelled (shutdown), not just the ack
            log.warning("delivery %s: ack cancelled by a lost connection", message.correlation_id)
            return
        except Exception:
            # journal or channel failure: leave the delivery unacked; it is redelivered
            log.exception("could not take delivery %s", message.correlation_id)
            return
        if accepted is not None:
            self._start(accepted)

    def _start(self, job: Accepted) -> asyncio.Task[Any]:
        task = self.spawn(self._execute(job))
        self._running[job.correlation_id] = (task, job.call)
        task.add_done_callback(lambda _: self._running.pop(job.correlation_id, None))
        return task

    async def _execute(self, job: Accepted) -> None:
        reply = await self.dispatcher.run(job.request, job.call)
        body = reply.to_bytes()
        if len(body) > self.settings.max_body:
            body = Reply.failure(
                PayloadTooLarge(
                    f"the result is {len(body)} bytes, over the {self.settings.max_body} byte cap",
                    {"size": len(body), "limit": self.settings.max_body},
                )
            ).to_bytes()
        await self._finish(
            job.user, job.key, job.reply_to, job.correlation_id, body, keep=job.journal
        )
        if job.delivery is not None:  # a pool request: answered, now it may leave the queue
            try:
                await job.delivery.ack()
            except Exception as exc:  # channel gone: the broker redelivers it to a member
                log.warning("could not ack pool request %s: %s", job.correlation_id, exc)

    async def _finish(
        self, user: str, key: str, reply_to: str, corr: str, body: bytes, *, keep: bool = True
    ) -> None:
        self.journal.finish(user, key, body if keep else None)
        await self.publisher.reply(reply_to, corr, body)
        extra = self.intake.waiters.pop((user, key), set()) - {(reply_to, corr)}
        if extra:  # duplicates that arrived while the request ran
            await asyncio.gather(*(self.publisher.reply(rt, c, body) for rt, c in extra))
        self.journal.mark_replied(user, key)

    # -- recovery -----------------------------------------------------------------------

    async def _recover(self) -> None:
        """Answer or resume what the journal holds from a previous run."""
        pruned = self.journal.prune(time.time() - self.settings.journal_retention)
        if pruned:
            log.info("journal: forgot %d answered request(s) older than the retention", pruned)
        for entry in self.journal.pending("done"):
            reply = entry.reply or self._interrupted(entry, "its reply was not kept")
            self._answer(entry, reply)
        suspects: list[Entry] = []
        for entry in self.journal.pending("accepted"):
            if entry.resumes > 0:  # already re-run once and cut short again: maybe a poison
                suspects.append(entry)
            else:
                self._resume(entry)
        if suspects:
            self.spawn(self._resume_one_by_one(suspects))

    async def _resume_one_by_one(self, suspects: list[Entry]) -> None:
        """Re-run requests interrupted by two or more restarts one at a time, oldest first.

        If one of them kills the process, the others are not running beside it, so only the
        culprit's count grows until it reaches ``resume_limit`` and is answered
        ``POISON_MESSAGE``; the rest run once it is out of the way.
        """
        for entry in suspects:
            task = self._resume(entry)
            if task is not None:
                await asyncio.wait([task])

    @staticmethod
    def _interrupted(entry: Entry, why: str) -> bytes:
        error = InternalError(
            f"the endpoint restarted while {entry.plugin}.{entry.method} ran and {why};"
            " send the request again",
            {"interrupted": True, "request_id": entry.request_id},
        )
        return Reply.failure(error).to_bytes()

    @staticmethod
    def _poison(entry: Entry) -> bytes:
        runs = entry.resumes + 1
        error = PoisonMessage(
            f"{entry.plugin}.{entry.method} was cut short by {runs} endpoint restarts (its"
            " handler may crash the endpoint), so it is not run again",
            {"reason": "resume_limit", "runs": runs, "request_id": entry.request_id},
        )
        return Reply.failure(error).to_bytes()

    def _answer(self, entry: Entry, body: bytes) -> None:
        self.spawn(self._finish(entry.user, entry.key, entry.reply_to, entry.request_id, body))

    def _resume(self, entry: Entry) -> asyncio.Task[Any] | None:
        """Run an accepted request again, or answer it; the task running it, if any."""
        if entry.args is None:  # arguments were never journaled (bulk data, secrets)
            self._answer(entry, self._interrupted(entry, "its arguments were not kept"))
            return None
        try:
            _, spec = self.dispatcher.resolve(entry.plugin, entry.method)
            idempotent = spec.idempotent
        except OrbitError:
            idempotent = True  # the dispatcher will answer with the same error again
        if not idempotent:
            self._answer(
                entry, self._interrupted(entry, "it is not idempotent, so it was not run again")
            )
            return None
        if entry.resumes >= self.settings.resume_limit:
            log.error(
                "request %s (%s.%s) was cut short by %d restarts: answering POISON_MESSAGE",
                entry.request_id,
                entry.plugin,
                entry.method,
                entry.resumes + 1,
            )
            self._answer(entry, self._poison(entry))
            return None
        self.journal.count_resume(entry.user, entry.key)  # durable before it runs again
        call = Call(
            entry.request_id,
            entry.user,
            self.name,
            entry.user in self.settings.admins,
            entry.deadline,
        )
        request = Request(plugin=entry.plugin, method=entry.method, args=entry.args)
        log.info("resuming %s (%s.%s)", entry.request_id, entry.plugin, entry.method)
        return self._start(
            Accepted(entry.user, entry.key, entry.reply_to, entry.request_id, request, call)
        )

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

    async def _heartbeat(self) -> None:
        while True:
            await self.publisher.link.ready.wait()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.heartbeat):
                    await self.publisher.event(
                        naming.BUILTIN_PLUGIN, naming.PRESENCE_TOPIC, self._presence("online")
                    )
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
                await self._recover()
                for slot in self.plugins.values():
                    if slot.plugin is not None:
                        await slot.plugin.start()
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
            ctx = EndpointContext(self.name, name, self.settings.state_dir / self.name, outbox)
            try:
                await slot.plugin.setup(ctx)
            except Exception as exc:
                log.error("plugin %s failed to set up: %s", name, exc)
                slot.error, slot.plugin = f"{type(exc).__name__}: {exc}", None

    async def _shutdown(self, links: list[asyncio.Task[None]], outbox: EventOutbox) -> None:
        log.info("endpoint %s stopping", self.name)
        self.accepting.clear()
        await self.consumer_link.close()
        in_flight = [task for task, _ in self._running.values()]
        if in_flight:
            log.info(
                "waiting up to %.0f s for %d running request(s)", SHUTDOWN_GRACE, len(in_flight)
            )
            await asyncio.wait(in_flight, timeout=SHUTDOWN_GRACE)
        for slot in self.plugins.values():
            if slot.plugin is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(slot.plugin.stop(), SHUTDOWN_GRACE)
        if self.publisher.link.ready.is_set():
            with contextlib.suppress(Exception):
                await outbox.flush(2.0)
                await asyncio.wait_for(
                    self.publisher.event(
                        naming.BUILTIN_PLUGIN, naming.PRESENCE_TOPIC, self._presence("offline")
                    ),
                    5,
                )
        for task in list(self._tasks):
            task.cancel()
        await self.publisher.link.close()
        for task in links:
            task.cancel()
        await asyncio.gather(*links, *self._tasks, return_exceptions=True)
        self.journal.close()
        log.info("endpoint %s stopped", self.name)


__all__ = ["Endpoint", "FatalLinkError"]
