"""Typed clients of ``hello``: ``await AsyncHello(client, "ep1").greet("Ada")`` returns a
:class:`~orbit_hello.schema.Greeting`; :class:`Hello` is the blocking twin for ``OrbitClient``."""

from __future__ import annotations

from orbit_client.feature import AsyncFeatureClient, SyncFeatureClient

from .schema import GreetArgs, Greeting


class AsyncHello(AsyncFeatureClient):
    """The ``hello`` plugin on one endpoint."""

    plugin = "hello"

    async def greet(self, name: str, *, shout: bool = False) -> Greeting:
        """Ask the endpoint to greet ``name`` (arguments checked here first)."""
        args = GreetArgs(name=name, shout=shout).model_dump()
        return await self._get(Greeting, "greet", **args)


class Hello(SyncFeatureClient[AsyncHello]):
    """Blocking :class:`AsyncHello`."""

    feature = AsyncHello

    def greet(self, name: str, *, shout: bool = False) -> Greeting:
        return self._run(lambda hello: hello.greet(name, shout=shout))


__all__ = ["AsyncHello", "Hello"]
