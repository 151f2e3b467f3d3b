"""``GET /events``: the user's events as Server-Sent Events, resumable by ``Last-Event-ID``.

Frames: ``event: hello`` first (user, oldest replayable id), then ``event: notification``
or ``event: topology`` (presence) with ``data: {endpoint, plugin, topic, data, ts}`` and
``id: <n>``; a ``gap`` member in ``hello`` when the ring buffer no longer holds every missed frame;
``: ping`` comments keep idle connections open.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from orbit_protocol import NotAuthorized

from .auth import UserSession, current_session
from .hub import EventHub, Filter, Frame, Listener

router = APIRouter()
RETRY_MS = 2000


BATCH = 64
"""Frames a lagging connection gets in one write."""


def _parse_id(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


async def _stream(
    hub: EventHub, listener: Listener, backlog: list[Frame], hello: dict[str, object]
) -> AsyncGenerator[ServerSentEvent | bytes, None]:
    try:
        yield ServerSentEvent(json.dumps(hello), event="hello", retry=RETRY_MS)
        for i in range(0, len(backlog), BATCH):
            yield b"".join(frame.encoded for frame in backlog[i : i + BATCH])
        queue = listener.queue
        while not listener.overflowed:
            chunk = [(await queue.get()).encoded]
            while not queue.empty() and len(chunk) < BATCH:  # behind: coalesce the writes
                chunk.append(queue.get_nowait().encoded)
            yield b"".join(chunk)
    finally:
        hub.detach(listener)


@router.get("/events")
async def events(
    request: Request,
    session: Annotated[UserSession, Depends(current_session)],
    endpoint: Annotated[list[str] | None, Query()] = None,
    plugin: str | None = None,
    topic: str | None = None,
    last_event_id: Annotated[str | None, Header()] = None,
    since: str | None = None,
) -> EventSourceResponse:
    """Follow events (exact words; ``endpoint`` may repeat); ``since`` = ``Last-Event-ID``."""
    hub = session.hub
    endpoints = frozenset(endpoint) if endpoint else None
    try:
        await hub.ensure(endpoints)
    except (NotAuthorized, ValueError) as exc:
        raise HTTPException(403, {"code": "NOT_AUTHORIZED", "message": str(exc)}) from None
    last_id = _parse_id(last_event_id) or _parse_id(since)
    listener, backlog = hub.attach(Filter(endpoints, plugin, topic), last_id)
    hello: dict[str, object] = {"user": session.user, "oldest": hub.oldest_id(), "last": hub.seq}
    if last_id is not None and last_id + 1 < hub.oldest_id():
        hello["gap"] = {"from": last_id + 1, "to": hub.oldest_id() - 1}
    settings = request.app.state.settings
    return EventSourceResponse(
        _stream(hub, listener, backlog, hello),
        ping=settings.ping,
        send_timeout=settings.send_timeout,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


__all__ = ["router"]
