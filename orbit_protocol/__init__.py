"""Orbit's wire contract, protocol v1: names, headers, bodies and the error tree.

Layering: ``orbit_protocol`` is the leaf; it imports pydantic only. Every other Orbit
package imports it, and it imports none of them.
"""

from . import naming
from .errors import (
    AuthenticationFailed,
    BadRequest,
    BrokerError,
    Cancelled,
    Conflict,
    DeadlineExceeded,
    EndpointBusy,
    EndpointOffline,
    ErrorCode,
    InternalError,
    InvalidArgs,
    NotAuthorized,
    NotFound,
    OrbitError,
    PayloadTooLarge,
    PoisonMessage,
    Unavailable,
    UnknownMethod,
    UnknownPlugin,
    error_for,
)
from .messages import (
    Directory,
    ErrorInfo,
    Event,
    Presence,
    Reply,
    Request,
    decode_reply,
    decode_request,
)
from .version import PROTOCOL_VERSION

__all__ = [
    "PROTOCOL_VERSION",
    "AuthenticationFailed",
    "BadRequest",
    "BrokerError",
    "Cancelled",
    "Conflict",
    "DeadlineExceeded",
    "Directory",
    "EndpointBusy",
    "EndpointOffline",
    "ErrorCode",
    "ErrorInfo",
    "Event",
    "InternalError",
    "InvalidArgs",
    "NotAuthorized",
    "NotFound",
    "OrbitError",
    "PayloadTooLarge",
    "PoisonMessage",
    "Presence",
    "Reply",
    "Request",
    "Unavailable",
    "UnknownMethod",
    "UnknownPlugin",
    "decode_reply",
    "decode_request",
    "error_for",
    "naming",
]
