"""AMQP header names and fixed property values of protocol v1 (docs/protocol.md)."""

from typing import Final

VERSION_HEADER: Final = "x-orbit-v"
"""Protocol version of the message, an integer."""

DEADLINE_HEADER: Final = "x-orbit-deadline"
"""Epoch milliseconds after which the endpoint refuses to *start* the work."""

DEATH_HEADER: Final = "x-death"
"""Set by RabbitMQ on dead-lettered messages; endpoints refuse requests carrying it."""

CONTENT_TYPE: Final = "application/json"
REPLY_TYPE: Final = "reply"

DEFAULT_MAX_BODY: Final = 4 * 1024 * 1024
"""Default cap on a message body in bytes (the broker's hard cap is 16 MiB)."""

HARD_MAX_BODY: Final = 16 * 1024 * 1024

__all__ = [
    "CONTENT_TYPE",
    "DEADLINE_HEADER",
    "DEATH_HEADER",
    "DEFAULT_MAX_BODY",
    "HARD_MAX_BODY",
    "REPLY_TYPE",
    "VERSION_HEADER",
]
