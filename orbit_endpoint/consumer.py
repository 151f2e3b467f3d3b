"""Deliveries → checks → journal → ack → work. DESIGN §3 and §4, in that order.

Every delivery is acked exactly once, after its fate is durable: refused (error reply
sent), a duplicate (stored reply sent again), or accepted (journal row written). Work
runs after the ack, so long operations never trip the broker's consumer timeout.
Pool deliveries (routing key ``pool.<p>``) are the exception: accepted ones are acked after
their reply is sent, so a member that dies leaves them to the other members.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from orbit_plugins.base import Call
from orbit_protocol import (
    BadRequest,
    Conflict,
    DeadlineExceeded,
    NotAuthorized,
    OrbitError,
    PayloadTooLarge,
    Reply,
    Request,
    decode_request,
)
from orbit_protocol.headers import DEADLINE_HEADER, DEATH_HEADER

from .journal import Journal, args_digest

log = logging.getLogger(__name__)
POOL_PREFIX = "pool."


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
    """A request now owned by the journal."""

    user: str
    key: str
    reply_to: str
    correlation_id: str
    request: Request
    call: Call
    journal: bool = True
    """Whether arguments and reply are kept in the journal (``@operation(journal=...)``)."""
    delivery: AbstractIncomingMessage | None = None
    """A pool delivery, acked only once the request is answered (see :class:`Intake`)."""


Reply_ = Callable[[str, str, bytes], Coroutine[Any, Any, None]]


def _deadline(message: AbstractIncomingMessage) -> float | None:
    raw = (message.headers or {}).get(DEADLINE_HEADER)
    if raw is None:
        return None
    try:
        return float(raw) / 1000.0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadRequest(f"{DEADLINE_HEADER} must be epoch milliseconds, got {raw!r}") from None


class Intake:
    """Turns one delivery into a refusal, a replayed reply, or an :class:`Accepted`."""

    def __init__(
        self,
        policy: Policy,
        journal: Journal,
        send_reply: Reply_,
        spawn: Callable[[Coroutine[Any, Any, None]], object],
        journals_args: Callable[[str, str], bool] = lambda plugin, method: True,
    ) -> None:
        self.journals_args = journals_args
        self.policy = policy
        self.journal = journal
        self.send_reply = send_reply
        self.spawn = spawn
        self.waiters: dict[tuple[str, str], set[tuple[str, str]]] = {}
        """Extra (reply_to, correlation_id) pairs for duplicates of running requests."""

    def _authorize(self, message: AbstractIncomingMessage) -> str:
        if message.routing_key not in self.policy.routing_keys:
            raise NotAuthorized(
                f"routing key {message.routing_key!r} is not served by {self.policy.endpoint!r}"
            )
        if DEATH_HEADER in (message.headers or {}):
            raise NotAuthorized("dead-lettered messages are not accepted as requests")
        user = message.user_id
        if not user:
            raise NotAuthorized("requests must carry user_id (the connection's user)")
        if not self.policy.may_call(user):
            raise NotAuthorized(f"user {user!r} may not call endpoint {self.policy.endpoint!r}")
        return user

    async def receive(self, message: AbstractIncomingMessage) -> Accepted | None:
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
            accepted = self._admit(message, reply_to, corr)
        except OrbitError as exc:
            log.info("refused %s from %s: %s", corr, message.user_id, exc)
            await self.send_reply(reply_to, corr, Reply.failure(exc).to_bytes())
            accepted = None
        if accepted is None or accepted.delivery is None:
            try:
                await message.ack()
            except BaseException:
                # journaled but the broker never heard the ack (connection lost, frozen
                # process): it delivers the request again, here or to a standby; forget
                # our row so that a redelivery here is fresh and a restart does not answer
                # "interrupted" for work another instance ran. BaseException: aiormq
                # *cancels* an ack caught in a dying connection, and a row left behind
                # would hold the redelivery as a duplicate of work nobody runs.
                if accepted is not None:
                    self.journal.forget(accepted.user, accepted.key, accepted.correlation_id)
                raise
        return accepted

    def _admit(self, message: AbstractIncomingMessage, reply_to: str, corr: str) -> Accepted | None:
        user = self._authorize(message)
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
        if (message.routing_key or "").startswith(POOL_PREFIX):
            # a pool delivery stays un-acked until answered, and is not journaled: if this
            # member dies the broker gives it to another member, and a restart here must not
            # run it a second time
            call = Call(
                request_id=corr,
                user=user,
                endpoint=self.policy.endpoint,
                is_admin=user in self.policy.admins,
                deadline=deadline,
            )
            return Accepted(user, key, reply_to, corr, request, call, False, message)
        digest = args_digest(request.plugin, request.method, request.args)
        full = self.journals_args(request.plugin, request.method)
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
                self._duplicate(known.args_hash, digest, known.reply, user, key, reply_to, corr)
                return None
            # a finished request whose reply was not kept: idempotent by contract, run again
        call = Call(
            request_id=corr,
            user=user,
            endpoint=self.policy.endpoint,
            is_admin=user in self.policy.admins,
            deadline=deadline,
        )
        return Accepted(user, key, reply_to, corr, request, call, full)

    def _duplicate(
        self,
        known_hash: str,
        digest: str,
        stored: bytes | None,
        user: str,
        key: str,
        reply_to: str,
        corr: str,
    ) -> None:
        if known_hash != digest:
            raise Conflict(
                f"idempotency key {key!r} was already used with other arguments",
                {"idempotency_key": key},
            )
        if stored is not None:
            self.spawn(self.send_reply(reply_to, corr, stored))
        else:
            self.waiters.setdefault((user, key), set()).add((reply_to, corr))


__all__ = ["Accepted", "Intake", "Policy"]
