"""The base of the typed feature clients (``AsyncSysinfo``, ``QueueInfo``, ...).

A feature client binds one plugin on one endpoint and returns the plugin's own pydantic
models. Writing one for a plugin takes a class attribute and one line per operation::

    class AsyncMath(AsyncFeatureClient):
        plugin = "math"

        async def add(self, a: int, b: int) -> Sum:
            return await self._get(Sum, "add", a=a, b=b)

    class Math(SyncFeatureClient[AsyncMath]):
        feature = AsyncMath

        def add(self, a: int, b: int) -> Sum:
            return self._run(lambda m: m.add(a, b))

Replies are read with :func:`read`: fields the model does not know are dropped first, so a
newer endpoint that sends more does not break an older client.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from ._async import AsyncOrbitClient
    from ._sync import OrbitClient

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def read(model: type[M], raw: Mapping[str, Any]) -> M:
    """``raw`` as ``model``, without the top-level fields ``model`` does not know (unless the
    model keeps extra fields: ``extra="allow"``)."""
    if model.model_config.get("extra") == "allow":
        return model.model_validate(raw)
    return model.model_validate({k: v for k, v in raw.items() if k in model.model_fields})


class AsyncFeatureClient:
    """One plugin (:attr:`plugin`) on one endpoint, through an :class:`AsyncOrbitClient`."""

    plugin: ClassVar[str]

    def __init__(self, client: AsyncOrbitClient, endpoint: str) -> None:
        self.client = client
        self.endpoint = endpoint

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.plugin} on {self.endpoint}>"

    async def _call(self, method: str, **args: Any) -> Any:
        """``plugin.method`` with ``args``; ``None`` values are left out (the defaults apply)."""
        return await self._invoke(f"{self.plugin}.{method}", args)

    async def _invoke(self, operation: str, args: Mapping[str, Any]) -> Any:
        """Any ``operation`` (``plugin.method``) on the bound endpoint, ``None`` args left out."""
        given = {k: v for k, v in args.items() if v is not None}
        return await self.client.call(self.endpoint, operation, **given)

    async def _get(self, model: type[M], method: str, **args: Any) -> M:
        """:meth:`_call`, its reply read as ``model``."""
        return read(model, await self._call(method, **args))

    async def _get_list(self, model: type[M], method: str, **args: Any) -> list[M]:
        """:meth:`_call` of an operation that answers a JSON list, each item read as ``model``."""
        return [read(model, item) for item in await self._call(method, **args)]


A = TypeVar("A", bound=AsyncFeatureClient)


class SyncFeatureClient(Generic[A]):
    """The blocking twin of a feature client: each method runs the async one on the loop of
    an :class:`OrbitClient`."""

    feature: ClassVar[type[AsyncFeatureClient]]

    def __init__(self, client: OrbitClient, endpoint: str) -> None:
        self.client = client
        self.endpoint = endpoint
        self._async: A = self.feature(client._async, endpoint)  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.feature.plugin} on {self.endpoint}>"

    def _run(self, work: Callable[[A], Coroutine[Any, Any, T]]) -> T:
        return self.client.run_in_loop(lambda _: work(self._async))


__all__ = ["AsyncFeatureClient", "M", "SyncFeatureClient", "read"]
