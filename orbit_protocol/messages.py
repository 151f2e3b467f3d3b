"""Pydantic models of the JSON bodies of protocol v1 (docs/protocol.md)."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from .errors import BadRequest, ErrorCode, OrbitError, error_for
from .naming import NAME_PATTERN
from .version import PROTOCOL_VERSION

_WORD = r"^[A-Za-z0-9_-]{1,64}$"
_JSON: TypeAdapter[Any] = TypeAdapter(Any)  # pydantic's Rust JSON: ~5x the stdlib on big bodies


try:  # optional accelerator: the protocol works with pydantic alone (docs/architecture.md)
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a dependency of the distribution
    _orjson = None  # type: ignore[assignment]


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON of ``value``.

    orjson when installed (a 1 MiB base64 string: 0.12 ms against 1.5 ms for pydantic's
    serializer, which checks every character for escapes); whatever orjson does not take
    (pydantic models, integers beyond 64 bits, non-string keys, bytes) and every body when
    it is absent goes through pydantic.
    """
    if _orjson is not None:
        try:
            return _orjson.dumps(value)
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            pass
    return _JSON.dump_json(value)


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True)

    def to_bytes(self) -> bytes:
        """Compact UTF-8 JSON, as published (fields as they are: no deep copy first)."""
        return dumps(dict(self))


class Request(_Body):
    """``{"v": 1, "plugin": "...", "method": "...", "args": {...}}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = PROTOCOL_VERSION
    plugin: str = Field(pattern=_WORD)
    method: str = Field(pattern=_WORD)
    args: dict[str, Any] = Field(default_factory=dict)

    @property
    def operation(self) -> str:
        """``plugin.method``, the value of the ``type`` property."""
        return f"{self.plugin}.{self.method}"


class ErrorInfo(BaseModel):
    """The ``error`` member of a failed reply."""

    model_config = ConfigDict(frozen=True)

    code: ErrorCode
    message: str
    details: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_exception(cls, exc: OrbitError) -> ErrorInfo:
        return cls(code=exc.code, message=exc.message, details=exc.details)

    def to_exception(self) -> OrbitError:
        return error_for(self.code, self.message, self.details)


class Reply(_Body):
    """``{"v": 1, "ok": true, "result": ...}`` or ``{"v": 1, "ok": false, "error": {...}}``."""

    v: Literal[1] = PROTOCOL_VERSION
    ok: bool
    result: Any = None
    error: ErrorInfo | None = None

    @model_validator(mode="after")
    def _error_iff_failed(self) -> Reply:
        if self.ok == (self.error is not None):
            raise ValueError("a reply has an error exactly when ok is false")
        return self

    def to_bytes(self) -> bytes:
        if self.ok:
            return dumps({"v": self.v, "ok": True, "result": self.result})
        return self.model_dump_json(exclude={"result"}).encode()

    @classmethod
    def success(cls, result: Any) -> Reply:
        return cls(ok=True, result=result)

    @classmethod
    def failure(cls, exc: OrbitError) -> Reply:
        return cls(ok=False, error=ErrorInfo.from_exception(exc))

    def unwrap(self) -> Any:
        """The result, or raise the exception class of the error code."""
        if self.error is not None:
            raise self.error.to_exception()
        return self.result


class Event(_Body):
    """``{"v": 1, "endpoint", "plugin", "topic", "ts", "data"}``."""

    v: Literal[1] = PROTOCOL_VERSION
    endpoint: str = Field(pattern=NAME_PATTERN)
    plugin: str = Field(pattern=_WORD)
    topic: str = Field(pattern=_WORD)
    ts: float = Field(default_factory=time.time)
    data: dict[str, Any] = Field(default_factory=dict)


class Presence(BaseModel):
    """``data`` of the ``<endpoint>.orbit.presence`` event."""

    model_config = ConfigDict(frozen=True)

    state: Literal["online", "offline"]
    plugins: dict[str, str] = Field(default_factory=dict, description="plugin name -> version")
    version: str
    host: str
    heartbeat: float = Field(default=10.0, description="seconds between presence events")
    allocation: dict[str, str] | None = Field(
        default=None,
        description="the batch job the endpoint runs in: scheduler, job_id, nodes, queue, ...",
    )


class Directory(_Body):
    """What one client was granted: the only message of ``orbit.sub.<user>.directory``.

    Written by the provisioner whenever a grant changes (the broker's topic permissions
    are the source); read by the user with ``basic.get`` and a requeue.
    """

    v: Literal[1] = PROTOCOL_VERSION
    user: str = Field(pattern=NAME_PATTERN)
    endpoints: tuple[str, ...] = ()
    pools: tuple[str, ...] = ()
    updated: float = Field(default_factory=time.time, description="epoch seconds")


def decode_request(body: bytes) -> Request:
    """Parse a request body, raising :class:`BadRequest` with a readable reason."""
    try:
        raw = _JSON.validate_json(body)  # rejects invalid UTF-8 as well
    except ValidationError as exc:
        reason = exc.errors(include_input=False)[0]["msg"]
        raise BadRequest(f"request body is not UTF-8 JSON: {reason}") from None
    if not isinstance(raw, dict):
        raise BadRequest("request body must be a JSON object")
    if raw.get("v") != PROTOCOL_VERSION:
        raise BadRequest(
            f"unsupported protocol version {raw.get('v')!r};"
            f" this endpoint speaks v{PROTOCOL_VERSION}",
            {"supported": [PROTOCOL_VERSION]},
        )
    try:
        return Request.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()]
        raise BadRequest(
            "malformed request: " + "; ".join(problems), {"errors": problems}
        ) from None


def decode_reply(body: bytes) -> Reply:
    """Parse a reply body; a malformed reply becomes a failed :class:`Reply` (``INTERNAL``)."""
    try:
        return Reply.model_validate_json(body)
    except ValidationError as exc:
        return Reply(
            ok=False,
            error=ErrorInfo(
                code=ErrorCode.INTERNAL,
                message=f"malformed reply from endpoint: {exc.error_count()} error(s)",
            ),
        )


__all__ = [
    "ErrorInfo",
    "Event",
    "Presence",
    "Reply",
    "Request",
    "decode_reply",
    "decode_request",
]
