"""The one error tree of Orbit (error codes: docs/protocol.md).

Every error code that crosses the wire has exactly one exception class; clients raise
the class that matches an error reply, endpoints raise them inside plugins and the
request lifecycle turns them back into error replies.

    OrbitError
    ├── BadRequest              BAD_REQUEST         (also ValueError)
    ├── UnknownPlugin           UNKNOWN_PLUGIN      (also LookupError)
    ├── UnknownMethod           UNKNOWN_METHOD      (also LookupError)
    ├── InvalidArgs             INVALID_ARGS        (also ValueError)
    ├── NotAuthorized           NOT_AUTHORIZED      (also PermissionError)
    ├── NotFound                NOT_FOUND           (also LookupError)
    ├── Conflict                CONFLICT
    ├── PayloadTooLarge         PAYLOAD_TOO_LARGE   (also ValueError)
    ├── EndpointBusy            ENDPOINT_BUSY       transient
    ├── DeadlineExceeded        DEADLINE_EXCEEDED   (also TimeoutError)
    ├── Cancelled               CANCELLED
    ├── EndpointOffline         ENDPOINT_OFFLINE    transient
    ├── PoisonMessage           POISON_MESSAGE
    ├── Unavailable             UNAVAILABLE         transient
    ├── InternalError           INTERNAL
    └── BrokerError             (local only: cannot reach or use the broker)
        └── AuthenticationFailed
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar


class ErrorCode(StrEnum):
    """Wire value of ``error.code`` in an error reply."""

    BAD_REQUEST = "BAD_REQUEST"
    UNKNOWN_PLUGIN = "UNKNOWN_PLUGIN"
    UNKNOWN_METHOD = "UNKNOWN_METHOD"
    INVALID_ARGS = "INVALID_ARGS"
    NOT_AUTHORIZED = "NOT_AUTHORIZED"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    ENDPOINT_BUSY = "ENDPOINT_BUSY"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    CANCELLED = "CANCELLED"
    ENDPOINT_OFFLINE = "ENDPOINT_OFFLINE"
    POISON_MESSAGE = "POISON_MESSAGE"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


class OrbitError(Exception):
    """Root of every Orbit exception.

    ``message`` is a sentence for humans, ``details`` structured facts (JSON-safe),
    ``transient`` says whether the same call may succeed when tried again later.
    """

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL
    transient: ClassVar[bool] = False

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return f"[{self.code.value}] {self.message}"


class BadRequest(OrbitError, ValueError):
    """The message is not a valid protocol v1 request."""

    code = ErrorCode.BAD_REQUEST


class UnknownPlugin(OrbitError, LookupError):
    """The endpoint has no plugin of that name."""

    code = ErrorCode.UNKNOWN_PLUGIN


class UnknownMethod(OrbitError, LookupError):
    """The plugin has no operation of that name."""

    code = ErrorCode.UNKNOWN_METHOD


class InvalidArgs(OrbitError, ValueError):
    """The arguments do not match the operation's schema (pydantic errors in details)."""

    code = ErrorCode.INVALID_ARGS


class NotAuthorized(OrbitError, PermissionError):
    """The caller may not do this (user not allowed, foreign object, path outside roots)."""

    code = ErrorCode.NOT_AUTHORIZED


class NotFound(OrbitError, LookupError):
    """The object the call names does not exist (or is not the caller's)."""

    code = ErrorCode.NOT_FOUND


class Conflict(OrbitError):
    """An idempotency key was reused with other arguments, or the target exists."""

    code = ErrorCode.CONFLICT


class PayloadTooLarge(OrbitError, ValueError):
    """A message body is larger than the configured cap."""

    code = ErrorCode.PAYLOAD_TOO_LARGE


class EndpointBusy(OrbitError):
    """The endpoint's request queue is full; try again later."""

    code = ErrorCode.ENDPOINT_BUSY
    transient = True


class DeadlineExceeded(OrbitError, TimeoutError):
    """The call's deadline passed before the work started or before the reply came."""

    code = ErrorCode.DEADLINE_EXCEEDED


class Cancelled(OrbitError):
    """The work was cancelled (by the caller, an admin, or an endpoint shutdown)."""

    code = ErrorCode.CANCELLED


class EndpointOffline(OrbitError):
    """The endpoint is not connected, or nobody picked the request up in time."""

    code = ErrorCode.ENDPOINT_OFFLINE
    transient = True


class PoisonMessage(OrbitError):
    """The request crashed its consumer too often and was dead-lettered."""

    code = ErrorCode.POISON_MESSAGE


class Unavailable(OrbitError):
    """A dependency the operation needs is missing or down (e.g. no Slurm)."""

    code = ErrorCode.UNAVAILABLE
    transient = True


class InternalError(OrbitError):
    """An unexpected failure inside the endpoint or a plugin."""

    code = ErrorCode.INTERNAL


class BrokerError(OrbitError, ConnectionError):
    """Local failure to reach or use the broker (never sent on the wire)."""

    code = ErrorCode.UNAVAILABLE
    transient = True


class AuthenticationFailed(BrokerError):
    """The broker refused the credentials; retrying will not help."""

    transient = False


ERRORS_BY_CODE: dict[ErrorCode, type[OrbitError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        UnknownPlugin,
        UnknownMethod,
        InvalidArgs,
        NotAuthorized,
        NotFound,
        Conflict,
        PayloadTooLarge,
        EndpointBusy,
        DeadlineExceeded,
        Cancelled,
        EndpointOffline,
        PoisonMessage,
        Unavailable,
        InternalError,
    )
}


def error_for(code: str, message: str, details: dict[str, Any] | None = None) -> OrbitError:
    """Build the exception for a wire error code; an unknown code becomes ``InternalError``."""
    try:
        cls = ERRORS_BY_CODE[ErrorCode(code)]
    except ValueError:
        details = {**(details or {}), "unknown_code": code}
        cls = InternalError
    return cls(message, details)


__all__ = [
    "ERRORS_BY_CODE",
    "AuthenticationFailed",
    "BadRequest",
    "BrokerError",
    "Cancelled",
    "Conflict",
    "DeadlineExceeded",
    "EndpointBusy",
    "EndpointOffline",
    "ErrorCode",
    "InternalError",
    "InvalidArgs",
    "NotAuthorized",
    "NotFound",
    "OrbitError",
    "PayloadTooLarge",
    "PoisonMessage",
    "Unavailable",
    "UnknownMethod",
    "UnknownPlugin",
    "error_for",
]
