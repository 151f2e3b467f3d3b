"""The one place where Orbit's requests, replies and events become AMQP messages.

Bodies come from :mod:`orbit_protocol.messages`; the properties here are the protocol's
(``docs/protocol.md``, "Messages"): who sent it (``user_id``), where the answer goes
(``reply_to``), which request it answers (``correlation_id``), the idempotency key
(``message_id``), the pickup deadline (``expiration``) and the ``x-orbit-v`` header.
"""

from __future__ import annotations

import math
import time

from orbit_protocol import Event
from orbit_protocol.headers import CONTENT_TYPE, DEADLINE_HEADER, REPLY_TYPE, VERSION_HEADER
from orbit_protocol.version import PROTOCOL_VERSION

from .base import PERSISTENT, TRANSIENT, Message, Properties

MAX_TIMEOUT = 366 * 86400.0
"""Seconds: the longest deadline a request may carry (a year, and a day)."""


def request_message(
    body: bytes,
    *,
    request_id: str,
    reply_to: str,
    user: str,
    operation: str,
    timeout: float | None,
    idempotency_key: str | None = None,
) -> Message:
    """A request; ``timeout`` (s) becomes both the pickup deadline and ``x-orbit-deadline``."""
    headers: dict[str, object] = {VERSION_HEADER: PROTOCOL_VERSION}
    expiration = None
    if timeout is not None:
        if not (math.isfinite(timeout) and timeout <= MAX_TIMEOUT):
            raise ValueError(f"timeout must be a number of seconds up to {MAX_TIMEOUT:.0f}")
        headers[DEADLINE_HEADER] = int((time.time() + timeout) * 1000)
        expiration = str(max(0, int(timeout * 1000)))
    return Message(
        body,
        Properties(
            content_type=CONTENT_TYPE,
            delivery_mode=PERSISTENT,
            correlation_id=request_id,
            message_id=idempotency_key or request_id,
            reply_to=reply_to,
            user_id=user,
            type=operation,
            expiration=expiration,
            headers=headers,
        ),
    )


def reply_message(body: bytes, *, correlation_id: str, message_id: str, user: str) -> Message:
    """A reply body (``orbit_protocol.Reply`` bytes) to the request ``correlation_id``."""
    return Message(
        body,
        Properties(
            content_type=CONTENT_TYPE,
            delivery_mode=PERSISTENT,
            correlation_id=correlation_id or None,
            message_id=message_id,
            user_id=user,
            type=REPLY_TYPE,
            headers={VERSION_HEADER: PROTOCOL_VERSION},
        ),
    )


def event_message(event: Event, *, message_id: str, user: str, persistent: bool) -> Message:
    """An event; its id is ``<boot>-<seq>``, monotonic per endpoint run."""
    return Message(
        event.to_bytes(),
        Properties(
            content_type=CONTENT_TYPE,
            delivery_mode=PERSISTENT if persistent else TRANSIENT,
            message_id=message_id,
            user_id=user,
            type=f"{event.plugin}.{event.topic}",
            timestamp=int(event.ts),
            headers={VERSION_HEADER: PROTOCOL_VERSION},
        ),
    )


__all__ = ["event_message", "reply_message", "request_message"]
