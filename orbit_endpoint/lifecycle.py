"""One request's life on an endpoint, in the order it happens.

    receive → authorise → admit (decode, resolve, journal or dedupe) → ack
            → dispatch (validate, run the plugin) → reply → finish (journal, duplicates)

Every delivery is acked exactly once, after its fate is durable: refused (error reply
sent), a duplicate (stored reply sent again), or accepted (journal row written). Work runs
after the ack, so long operations never trip the broker's consumer timeout. Pool
deliveries (routing key ``pool.<p>``) are the exception: they are not journaled and are
acked after their reply is sent, so a member that dies leaves them to the other members.
``docs/reliability.md`` explains each rule; ``docs/architecture.md`` walks one request.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from orbit_amqp import Delivery
from orbit_plugins.base import Call, OperationSpec
from orbit_protocol import (
    BadRequest,
    Cancelled,
    Conflict,
    DeadlineExceeded,
    InternalError,
    NotAuthorized,
    OrbitError,
    PayloadTooLarge,
    Reply,
    Request,
    decode_request,
)
from orbit_protocol.headers import DEADLINE_HEADER, DEATH_HEADER

from .journal import Journal, args_digest
from .registry import Registry

log = logging.getLogger(__name__)
POOL_PREFIX = "pool."
SendReply = Callable[[str, str, bytes], Awaitable[None]]
Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]


@dataclass(frozen=True)
class Policy:
    """Who may call, which routing keys are ours, how big a body may be."""

    endpoint: str
    routing_keys: frozenset[str]
    allowed: frozenset[str]
    admins: frozenset[str]
    allow_all: bool
    max_body: int

    def may_call(self, user: str) -> bool:
        return self.allow_all or user in self.allowed or user in self.admins


@dataclass(frozen=True)
class Accepted:
    """A request this endpoint now owns (journaled, or an un-acked pool delivery)."""

    user: str
    key: str
    reply_to: str
    correlation_id: str
    request: Request
    call: Call
    journal: bool = True
    """Whether arguments and reply are kept in the journal (``@operation(journal=...)``)."""
    delivery: Delivery | None = None
    """A pool delivery, acked only once the request is answered."""


def _deadline(message: Delivery) -> float | None:
    raw = message.headers.get(DEADLINE_HEADER)
    if raw is None:
        return None
    try:
        return float(raw) / 1000.0
    except (TypeError, ValueError):
        raise BadRequest(f"{DEADLINE_HEADER} must be epoch milliseconds, got {raw!r}") from None


class Lifecycle:
    """Owns requests from delivery to reply; the runtime wires it to the links."""

    def __init__(
        self,
        policy: Policy,
        journal: Journal,
        registry: Registry,
        send_reply: SendReply,
        spawn: Spawn,
        *,
        debug: bool = False,
    ) -> None:
        self.policy = policy
        self.journal = journal
        self.registry = registry
        self.send_reply = send_reply
        self.spawn = spawn
        self.debug = debug
        self.running: dict[str, tuple[asyncio.Task[Any], Call]] = {}
        self._waiters: dict[tuple[str, str], set[tuple[str, str]]] = {}
        """Extra (reply_to, correlation_id) pairs for duplicates of running requests."""

    # -- 1. receive --------------------------------------------------------------------

    async def receive(self, message: Delivery) -> None:
        """The consumer callback. A closing channel cancels consumer callbacks, so the
        journal write, the ack and the start of accepted work run shielded together, in a
        task the runtime holds (a shielded task nobody references can be collected)."""
        await asyncio.shield(self.spawn(self._receive(message)))

    async def _receive(self, message: Delivery) -> None:
        try:
            accepted = await self.intake(message)
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
            self.start(accepted)

    async def intake(self, message: Delivery) -> Accepted | None:
        """Handle the delivery up to and including its ack."""
        reply_to, corr = message.reply_to, message.correlation_id
        if not reply_to:  # nobody to answer: dead-letter it, where operators can see it
            log.warning("refusing message without reply_to (%s)", message.message_id)
            await message.reject(requeue=False)
            return None
        if not corr:
            error = BadRequest("requests must carry a correlation_id (the request id)")
            await self.send_reply(reply_to, "", Reply.failure(error).to_bytes())
            await message.ack()
            return None
        try:
            accepted = self._admit(message, self._authorize(message), reply_to, corr)
        except OrbitError as exc:
            log.info("refused %s from %s: %s", corr, message.user_id, exc)
            await self.send_reply(reply_to, corr, Reply.failure(exc).to_bytes())
            accepted = None
        if accepted is None or accepted.delivery is None:
            await self._ack(message, accepted)
        return accepted

    # -- 2. authorise ------------------------------------------------------------------

    def _authorize(self, message: Delivery) -> str:
        if message.routing_key not in self.policy.routing_keys:
            raise NotAuthorized(
                f"routing key {message.routing_key!r} is not served by {self.policy.endpoint!r}"
            )
        if DEATH_HEADER in message.headers:
            raise NotAuthorized("dead-lettered messages are not accepted as requests")
        user = message.user_id
        if not user:
            raise NotAuthorized("requests must carry user_id (the connection's user)")
        if not self.policy.may_call(user):
            raise NotAuthorized(f"user {user!r} may not call endpoint {self.policy.endpoint!r}")
        return user

    # -- 3. admit: decode, journal or dedupe --------------------------------------------

    def _admit(self, message: Delivery, user: str, reply_to: str, corr: str) -> Accepted | None:
        if len(message.body) > self.policy.max_body:
            raise PayloadTooLarge(
                f"request body is {len(message.body)} bytes; this endpoint accepts at most"
                f" {self.policy.max_body} (use the staging plugin for data)",
                {"size": len(message.body), "limit": self.policy.max_body},
            )
        deadline = _deadline(message)
        if deadline is not None and time.time() > deadline:
            raise DeadlineExceeded("the request's deadline passed before the endpoint picked it up")
        request = decode_request(message.body)
        key = message.message_id or corr
        call = Call(corr, user, self.policy.endpoint, user in self.policy.admins, deadline)
        if message.routing_key.startswith(POOL_PREFIX):
            # a pool delivery stays un-acked until answered, and is not journaled: if this
            # member dies the broker gives it to another member, and a restart here must not
            # run it a second time
            return Accepted(user, key, reply_to, corr, request, call, False, message)
        digest = args_digest(request.plugin, request.method, request.args)
        full = self.registry.journals_args(request.plugin, request.method)
        fresh = self.journal.accept(
            user=user,
            key=key,
            request_id=corr,
            plugin=request.plugin,
            method=request.method,
            args=request.args if full else None,
            args_hash=digest,
            reply_to=reply_to,
            deadline=deadline,
        )
        if not fresh:
            known = self.journal.get(user, key)
            assert known is not None
            if full or known.state == "accepted" or known.args_hash != digest:
                if known.args_hash != digest:
                    raise Conflict(
                        f"idempotency key {key!r} was already used with other arguments",
                        {"idempotency_key": key},
                    )
                self._duplicate(known.reply, user, key, reply_to, corr)
                return None
            # a finished request whose reply was not kept: idempotent by contract, run again
        return Accepted(user, key, reply_to, corr, request, call, full)

    def _duplicate(
        self, stored: bytes | None, user: str, key: str, reply_to: str, corr: str
    ) -> None:
        if stored is not None:
            self.spawn(self.send_reply(reply_to, corr, stored))  # type: ignore[arg-type]
        else:  # still running: answered with the original when it finishes
            self._waiters.setdefault((user, key), set()).add((reply_to, corr))

    # -- 4. ack ------------------------------------------------------------------------

    async def _ack(self, message: Delivery, accepted: Accepted | None) -> None:
        try:
            await message.ack()
        except BaseException:
            # journaled but the broker never heard the ack (connection lost, frozen
            # process): it delivers the request again, here or to a standby; forget our
            # row so that a redelivery here is fresh and a restart does not answer
            # "interrupted" for work another instance ran. BaseException: aiormq
            # *cancels* an ack caught in a dying connection, and a row left behind would
            # hold the redelivery as a duplicate of work nobody runs.
            if accepted is not None:
                self.journal.forget(accepted.user, accepted.key, accepted.correlation_id)
            raise

    # -- 5. dispatch -------------------------------------------------------------------

    def start(self, job: Accepted) -> asyncio.Task[Any]:
        """Run an accepted request in its own task (cancellable by ``orbit.cancel``)."""
        task = self.spawn(self._execute(job))
        self.running[job.correlation_id] = (task, job.call)
        task.add_done_callback(lambda _: self.running.pop(job.correlation_id, None))
        return task

    def cancel(self, request_id: str) -> bool:
        running = self.running.get(request_id)
        if running is None:
            return False
        task, call = running
        call.cancel()
        task.cancel()
        return True

    async def dispatch(self, request: Request, call: Call) -> Reply:
        """Execute ``request``; never raises (except ``CancelledError`` on shutdown)."""
        try:
            plugin, spec = self.registry.resolve(request.plugin, request.method)
            if spec.admin_only and not call.is_admin:
                raise NotAuthorized(f"{request.operation} is for the endpoint's admins only")
            args = self.registry.validate(spec, request.args)
            return Reply.success(await plugin.invoke(spec, args, call))
        except OrbitError as exc:
            return Reply.failure(exc)
        except asyncio.CancelledError:
            if call.cancelled:
                return Reply.failure(Cancelled(f"request {call.request_id} was cancelled"))
            raise
        except Exception as exc:
            log.exception("%s failed for request %s", request.operation, call.request_id)
            details: dict[str, Any] = {"type": type(exc).__name__}
            if self.debug:
                details["traceback"] = traceback.format_exc()
            return Reply.failure(InternalError(f"{request.operation} failed: {exc}", details))

    async def _execute(self, job: Accepted) -> None:
        body = (await self.dispatch(job.request, job.call)).to_bytes()
        if len(body) > self.policy.max_body:
            body = Reply.failure(
                PayloadTooLarge(
                    f"the result is {len(body)} bytes, over the {self.policy.max_body} byte cap",
                    {"size": len(body), "limit": self.policy.max_body},
                )
            ).to_bytes()
        await self.finish(job.user, job.key, job.reply_to, job.correlation_id, body, job.journal)
        if job.delivery is not None:  # a pool request: answered, now it may leave the queue
            try:
                await job.delivery.ack()
            except Exception as exc:  # channel gone: the broker redelivers it to a member
                log.warning("could not ack pool request %s: %s", job.correlation_id, exc)

    # -- 6. reply and finish -----------------------------------------------------------

    async def finish(
        self, user: str, key: str, reply_to: str, corr: str, body: bytes, keep: bool = True
    ) -> None:
        """Journal the reply, send it (and to duplicates that came meanwhile), mark it."""
        self.journal.finish(user, key, body if keep else None)
        await self.send_reply(reply_to, corr, body)
        extra = self._waiters.pop((user, key), set()) - {(reply_to, corr)}
        if extra:  # duplicates that arrived while the request ran
            await asyncio.gather(*(self.send_reply(rt, c, body) for rt, c in extra))
        self.journal.mark_replied(user, key)

    def spec_of(self, plugin: str, method: str) -> OperationSpec | None:
        """The operation's spec, or ``None`` when it does not resolve (an error reply)."""
        try:
            return self.registry.resolve(plugin, method)[1]
        except OrbitError:
            return None


__all__ = ["Accepted", "Lifecycle", "Policy"]
