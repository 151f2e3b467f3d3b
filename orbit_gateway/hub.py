"""One user's event fan-out: broker subscription → ring buffer → per-connection queues.

Each logged-in user has one hub. Frames get a per-hub sequence number (the SSE ``id``);
the last ``history`` frames stay in memory for ``Last-Event-ID`` replay. Publishing to
listeners never awaits: a listener whose queue is full is marked overflowed and its
SSE stream ends, so the browser reconnects and resumes from the ring buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sse_starlette import ServerSentEvent

from orbit_client import AsyncOrbitClient, DirectoryEntry, Subscription
from orbit_protocol import Event, NotAuthorized, NotFound, naming

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    """One SSE frame: ``id``, ``event`` (``notification``/``topology``) and JSON ``data``."""

    id: int
    event: Event

    @property
    def kind(self) -> str:
        presence = (naming.BUILTIN_PLUGIN, naming.PRESENCE_TOPIC)
        return "topology" if (self.event.plugin, self.event.topic) == presence else "notification"

    def payload(self) -> dict[str, Any]:
        """The seed's shape: ``{endpoint, plugin, topic, data}`` (+ ``ts``)."""
        e = self.event
        return {
            "endpoint": e.endpoint,
            "plugin": e.plugin,
            "topic": e.topic,
            "data": e.data,
            "ts": e.ts,
        }

    @cached_property
    def encoded(self) -> bytes:
        """The SSE bytes, encoded once however many connections send them."""
        data = json.dumps(self.payload(), default=str)
        return ServerSentEvent(data, event=self.kind, id=str(self.id)).encode()


@dataclass(frozen=True)
class Filter:
    """Exact words; ``None`` matches anything, ``endpoints`` any of the names."""

    endpoints: frozenset[str] | None = None
    plugin: str | None = None
    topic: str | None = None

    def matches(self, event: Event) -> bool:
        if self.endpoints is not None and event.endpoint not in self.endpoints:
            return False
        return all(
            want is None or want == got
            for want, got in ((self.plugin, event.plugin), (self.topic, event.topic))
        )


@dataclass(eq=False)
class Listener:
    """One SSE connection's bounded queue."""

    filter: Filter
    maxsize: int
    queue: asyncio.Queue[Frame] = field(init=False)
    overflowed: bool = False

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.maxsize)

    def offer(self, frame: Frame) -> None:
        if self.overflowed or not self.filter.matches(frame.event):
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflowed = True  # the stream ends; the browser resumes by Last-Event-ID


class EventHub:
    """Events one user may see (their broker topic permissions decide), with replay."""

    def __init__(self, client: AsyncOrbitClient, *, history: int, client_queue: int) -> None:
        self.client = client
        self.history: deque[Frame] = deque(maxlen=history)
        self.client_queue = client_queue
        self.seq = 0
        self.listeners: set[Listener] = set()
        self.wildcard = False
        self.granted: frozenset[str] | None = None
        """Endpoints of the user's directory (``None``: the broker keeps none)."""
        self._subs: dict[str, Subscription] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Follow every endpoint if the broker allows this user a wildcard binding, else
        every endpoint of the user's directory (if the broker keeps one)."""
        with contextlib.suppress(NotAuthorized):
            await self._follow(None)
            self.wildcard = True
            return
        with contextlib.suppress(NotFound):
            await self.directory()

    async def directory(self) -> list[DirectoryEntry]:
        """The user's directory; its endpoints' events flow in from now on."""
        try:
            entries = await self.client.directory()
        except NotFound:
            self.granted = None
            raise
        self.granted = frozenset(e.name for e in entries if e.kind == "endpoint")
        if not self.wildcard:
            for name in sorted(self.granted):
                with contextlib.suppress(NotAuthorized):  # a grant newer than this link
                    await self._follow(name)
        return entries

    @property
    def follows_all(self) -> bool:
        """Every endpoint this user may see is followed without naming it."""
        return self.wildcard or self.granted is not None

    async def ensure(self, endpoints: frozenset[str] | None) -> None:
        """Make sure events of ``endpoints`` flow in; ``NotAuthorized`` if the broker refuses."""
        if self.wildcard:
            return
        if endpoints is None:
            if self.granted is not None:
                return
            raise NotAuthorized(
                f"user {self.client.user!r} may not follow all endpoints: add ?endpoint=NAME"
            )
        for endpoint in sorted(endpoints):
            await self._follow(naming.validate_name(endpoint))

    async def _follow(self, endpoint: str | None) -> None:
        pattern = naming.event_pattern(endpoint)
        if pattern in self._subs:
            return
        try:
            sub = await self.client.subscribe(endpoint)
        except NotAuthorized:
            what = f"endpoint {endpoint!r}" if endpoint else "all endpoints"
            raise NotAuthorized(f"user {self.client.user!r} may not follow {what}") from None
        self._subs[pattern] = sub
        task = asyncio.create_task(self._pump(sub))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pump(self, sub: Subscription) -> None:
        presence = (naming.BUILTIN_PLUGIN, naming.PRESENCE_TOPIC)
        while True:
            event, sender = await sub.get_with_sender()
            if not self.wildcard and (event.plugin, event.topic) == presence:
                with contextlib.suppress(ValueError):  # the client could not watch presence
                    self.client.presence.update(event, sender)
            self.publish(event)

    def publish(self, event: Event) -> Frame:
        """Number, remember and fan out one event (never blocks)."""
        self.seq += 1
        frame = Frame(self.seq, event)
        self.history.append(frame)
        for listener in list(self.listeners):
            listener.offer(frame)
        return frame

    def attach(self, filter_: Filter, last_id: int | None) -> tuple[Listener, list[Frame]]:
        """A new listener and the frames it missed after ``last_id`` (atomically: no await)."""
        listener = Listener(filter_, self.client_queue)
        backlog: list[Frame] = []
        if last_id is not None:
            if last_id > self.seq:  # ids from before a gateway restart: replay all we have
                last_id = 0
            backlog = [f for f in self.history if f.id > last_id and filter_.matches(f.event)]
        self.listeners.add(listener)
        return listener, backlog

    def detach(self, listener: Listener) -> None:
        self.listeners.discard(listener)

    def oldest_id(self) -> int:
        return self.history[0].id if self.history else self.seq + 1

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for sub in self._subs.values():
            await sub.close()


__all__ = ["EventHub", "Filter", "Frame", "Listener"]
