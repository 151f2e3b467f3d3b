"""A plugin for tests: echo, sleep, failures, side effects with a ledger, events, big results."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from orbit_plugins import Call, Plugin, operation
from orbit_protocol import NotFound, Unavailable


class EchoArgs(BaseModel):
    value: Any = None
    delay: float = Field(default=0.0, ge=0, le=30)


class SleepArgs(BaseModel):
    seconds: float = Field(ge=0, le=600)


class FailArgs(BaseModel):
    kind: Literal["crash", "unavailable", "not_found"] = "crash"


class EffectArgs(BaseModel):
    ledger: str
    token: str
    delay: float = Field(default=0.0, ge=0, le=30)


class EmitArgs(BaseModel):
    topic: str = "tick"
    count: int = Field(default=1, ge=1, le=1000)


class BigArgs(BaseModel):
    size: int = Field(ge=0)


class SealedArgs(BaseModel):
    token: str


class KitPlugin(Plugin):
    """Operations with known behaviour, for the integration tests."""

    name = "testkit"
    version = "1.0"

    @operation(idempotent=True)
    async def echo(self, args: EchoArgs) -> dict[str, Any]:
        """Return the value (after an optional delay)."""
        if args.delay:
            await asyncio.sleep(args.delay)
        return {"value": args.value}

    @operation(idempotent=True)
    async def sleep(self, args: SleepArgs, call: Call) -> dict[str, float]:
        """Sleep on the event loop (cancellable)."""
        await asyncio.sleep(args.seconds)
        return {"slept": args.seconds}

    @operation(idempotent=True)
    def blocking_sleep(self, args: SleepArgs) -> dict[str, float]:
        """Sleep in a worker thread (proves the loop is not blocked)."""
        time.sleep(args.seconds)
        return {"slept": args.seconds}

    @operation
    def fail(self, args: FailArgs) -> None:
        """Fail in the requested way."""
        if args.kind == "unavailable":
            raise Unavailable("the fake scheduler is not installed")
        if args.kind == "not_found":
            raise NotFound("no such thing")
        raise RuntimeError("boom")

    @operation
    async def effect(self, args: EffectArgs) -> dict[str, Any]:
        """Append ``token`` to the ledger file: a non-idempotent side effect."""
        if args.delay:
            await asyncio.sleep(args.delay)
        with Path(args.ledger).open("a") as fh:
            fh.write(f"{args.token} {os.getpid()}\n")
        return {"token": args.token}

    @operation
    async def emit(self, args: EmitArgs) -> dict[str, int]:
        """Publish ``count`` events on ``topic``."""
        for i in range(args.count):
            self.ctx.emit(args.topic, {"i": i})
        return {"emitted": args.count}

    @operation(idempotent=True)
    async def die(self, args: EffectArgs) -> None:
        """Append ``token`` to the ledger, then kill the endpoint process (a poison handler)."""
        if args.delay:
            await asyncio.sleep(args.delay)
        with Path(args.ledger).open("a") as fh:
            fh.write(f"{args.token} {os.getpid()}\n")
        os._exit(70)

    @operation(idempotent=True, journal=False)
    async def sealed(self, args: SealedArgs) -> dict[str, int]:
        """Count calls; the token must never reach the endpoint's disk."""
        self.sealed_calls = getattr(self, "sealed_calls", 0) + 1
        return {"calls": self.sealed_calls}

    @operation(idempotent=True)
    async def big(self, args: BigArgs) -> str:
        """A result of ``size`` bytes."""
        return "x" * args.size
