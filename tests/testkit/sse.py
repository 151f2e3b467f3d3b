"""A small ``text/event-stream`` reader for the gateway tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class SseFrame:
    event: str
    id: str | None
    data: Any


async def frames(response: httpx.Response) -> AsyncIterator[SseFrame]:
    """Parse ``text/event-stream`` lines into frames (comments skipped)."""
    event, ident, data = "message", None, list[str]()
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield SseFrame(event, ident, json.loads("\n".join(data)))
            event, ident, data = "message", None, []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "id":
                ident = value
            elif name == "data":
                data.append(value)


async def take(
    stream: AsyncIterator[SseFrame], n: int, kind: str = "notification", timeout: float = 20
) -> list[SseFrame]:
    """The next ``n`` frames of ``kind`` (others skipped)."""
    got: list[SseFrame] = []
    async with asyncio.timeout(timeout):
        async for frame in stream:
            if frame.event == kind:
                got.append(frame)
                if len(got) == n:
                    break
    return got


__all__ = ["SseFrame", "frames", "take"]
