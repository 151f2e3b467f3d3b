"""The endpoint side: ``hello.greet`` answers and emits a ``hello.greeted`` event."""

from __future__ import annotations

from orbit_plugins import Call, Plugin, operation

from .schema import GreetArgs, Greeting


class HelloPlugin(Plugin):
    """Greets callers by name."""

    name = "hello"
    version = "0.1.0"
    description = "Example plugin: greetings"

    def __init__(self, settings: dict[str, object] | None = None) -> None:
        super().__init__(settings)
        self.count = 0

    @operation(idempotent=True)
    async def greet(self, args: GreetArgs, call: Call) -> Greeting:
        """Say hello to ``name`` (and tell everybody who follows the events)."""
        self.count += 1
        text = f"Hello, {args.name}!"
        greeting = Greeting(
            text=text.upper() if args.shout else text, endpoint=call.endpoint, count=self.count
        )
        self.ctx.emit("greeted", {"name": args.name, "by": call.user})
        return greeting
