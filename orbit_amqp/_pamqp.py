"""aio-pika ↔ Orbit: aiormq's exceptions as transport errors, pamqp properties as ours."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator

import aiormq
import aiormq.exceptions
from pamqp.commands import Basic

from orbit_protocol.errors import BrokerError

from .base import Properties
from .errors import (
    AccessRefused,
    ChannelError,
    ConnectionLost,
    EntityNotFound,
    PreconditionFailed,
    PublishNacked,
    ResourceLocked,
    Unroutable,
)

_LOST = (
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    OSError,
)


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """aiormq's exceptions as Orbit's transport errors (order matters: subclasses first)."""
    try:
        yield
    except aiormq.exceptions.PublishError as exc:  # basic.return, a DeliveryError subclass
        raise Unroutable(f"NO_ROUTE: {exc}") from None
    except aiormq.exceptions.DeliveryError as exc:
        raise PublishNacked(f"the broker refused the message: {exc}") from None
    except aiormq.exceptions.ChannelAccessRefused as exc:
        raise AccessRefused(str(exc)) from None
    except aiormq.exceptions.ChannelNotFoundEntity as exc:
        raise EntityNotFound(str(exc)) from None
    except aiormq.exceptions.ChannelPreconditionFailed as exc:
        raise PreconditionFailed(str(exc)) from None
    except aiormq.exceptions.ChannelLockedResource as exc:
        raise ResourceLocked(str(exc)) from None
    except aiormq.exceptions.ChannelClosed as exc:
        raise ChannelError(str(exc)) from None
    except (BrokerError, TimeoutError):  # TimeoutError is an OSError: not a lost connection
        raise
    except _LOST as exc:
        raise ConnectionLost(f"{type(exc).__name__}: {exc}") from None
    except RuntimeError as exc:  # aiormq/aio-pika: "<Connection ...> closed", "... not ready"
        if not any(word in str(exc) for word in ("closed", "not ready", "not opened")):
            raise
        raise ConnectionLost(f"{type(exc).__name__}: {exc}") from None


def to_pamqp(props: Properties) -> Basic.Properties:
    stamp = (
        None
        if props.timestamp is None
        else datetime.datetime.fromtimestamp(props.timestamp, datetime.UTC)
    )
    return Basic.Properties(
        content_type=props.content_type,
        headers=props.headers or None,
        delivery_mode=props.delivery_mode,
        correlation_id=props.correlation_id,
        reply_to=props.reply_to,
        expiration=props.expiration,
        message_id=props.message_id,
        timestamp=stamp,
        message_type=props.type,
        user_id=props.user_id,
    )


def from_pamqp(raw: Basic.Properties) -> Properties:
    stamp = raw.timestamp
    return Properties(
        content_type=raw.content_type,
        delivery_mode=raw.delivery_mode,
        correlation_id=raw.correlation_id,
        message_id=raw.message_id,
        reply_to=raw.reply_to,
        user_id=raw.user_id,
        type=raw.message_type,
        expiration=raw.expiration,
        timestamp=None if stamp is None else int(stamp.timestamp()),
        headers=dict(raw.headers or {}),
    )


__all__ = ["from_pamqp", "to_pamqp", "translated"]
