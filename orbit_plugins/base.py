"""The plugin contract: :class:`Plugin`, :func:`operation`, :class:`PluginContext`, :class:`Call`.

A plugin is a class with a ``name``, a ``version`` and methods marked ``@operation``.
Each operation takes at most one pydantic model (its arguments) and optionally a
:class:`Call` (who is calling, the deadline, cancellation); its return annotation is
its result schema. Plain ``def`` operations run in a worker thread, ``async def`` ones
on the endpoint's event loop.

Lifecycle, driven by the endpoint:
``setup(ctx)`` once before consuming starts (load config, probe dependencies; raising
here marks the plugin unavailable, the endpoint keeps running) → ``start()`` → calls …
→ ``stop()`` on graceful shutdown (finish or journal in-flight work; must not hang).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Generic,
    Protocol,
    TypeVar,
    overload,
    runtime_checkable,
)

from pydantic import BaseModel, ConfigDict, TypeAdapter

from orbit_protocol import Cancelled

if TYPE_CHECKING:
    from orbit_client import AsyncOrbitClient, EndpointInfo


class NoArgs(BaseModel):
    """Arguments of an operation that takes none."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class Call:
    """Facts about one request, handed to operations that ask for them."""

    request_id: str
    user: str
    endpoint: str
    is_admin: bool = False
    deadline: float | None = None
    """Epoch seconds after which the caller no longer waits, if it said so."""
    _cancelled: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def cancelled(self) -> bool:
        """True once ``orbit.cancel`` was called for this request (check it in long loops)."""
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise Cancelled(f"request {self.request_id} was cancelled")


@runtime_checkable
class PluginContext(Protocol):
    """What the endpoint offers a plugin (implemented by ``orbit_endpoint``)."""

    @property
    def endpoint(self) -> str:
        """The endpoint's name."""
        ...

    @property
    def logger(self) -> logging.Logger: ...

    @property
    def state_dir(self) -> str:
        """A private, persistent directory for this plugin."""
        ...

    def emit(self, topic: str, data: dict[str, Any], *, persistent: bool = False) -> None:
        """Publish an event ``<endpoint>.<plugin>.<topic>``; thread-safe, never blocks."""
        ...

    async def client(self) -> AsyncOrbitClient:
        """An Orbit client that acts as this endpoint's own broker user (the broker stamps
        that user on every call it makes): connected on first use, shared by the endpoint's
        plugins, closed after they stop. See docs/plugins/orchestration.md."""
        ...

    def topology(self) -> dict[str, EndpointInfo]:
        """The endpoints this endpoint's client has heard through presence, by name."""
        ...


F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class Prepared(Generic[T]):
    """A result already in its JSON form (``-> Prepared[list[TaskRecord]]``).

    The operation's schema is still ``T``, but the endpoint sends ``value`` as it is,
    without validating or serializing it: for large results that the plugin builds from
    data it holds itself (FastAPI's analogue is returning a ``Response``).
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


@dataclass(frozen=True)
class OperationSpec:
    """What ``@operation`` records about a method."""

    name: str
    func: Callable[..., Any]
    args_model: type[BaseModel]
    result_adapter: TypeAdapter[Any]
    params: tuple[str, ...]
    """Kinds of the parameters after ``self``, in order: ``"args"`` or ``"call"``."""
    is_async: bool
    admin_only: bool
    idempotent: bool
    journal: bool
    """False: the journal keeps only a digest of the arguments and no reply (bulk data,
    secrets); a duplicate is run again and a crash answers it as interrupted."""
    doc: str

    def json_schemas(self) -> dict[str, Any]:
        return {
            "args": self.args_model.model_json_schema(),
            "result": self.result_adapter.json_schema(),
        }


_OP_ATTR = "__orbit_operation__"


@overload
def operation(func: F, /) -> F: ...
@overload
def operation(
    *,
    name: str | None = None,
    admin_only: bool = False,
    idempotent: bool = False,
    journal: bool = True,
) -> Callable[[F], F]: ...
def operation(
    func: F | None = None,
    /,
    *,
    name: str | None = None,
    admin_only: bool = False,
    idempotent: bool = False,
    journal: bool = True,
) -> F | Callable[[F], F]:
    """Mark a plugin method as a remote operation.

    ``idempotent=True`` lets the endpoint run the request again after a crash; otherwise
    an interrupted request is answered with an error instead of being re-run.
    ``journal=False`` keeps arguments and result out of the endpoint journal (chunks of
    data, tokens); such an operation must be idempotent.
    """
    if not journal and not idempotent:
        raise TypeError("an operation with journal=False must be idempotent=True")

    def mark(f: F) -> F:
        options = {"name": name, "admin_only": admin_only, "idempotent": idempotent}
        setattr(f, _OP_ATTR, options | {"journal": journal})
        return f

    return mark(func) if func is not None else mark


def _build_spec(func: Callable[..., Any], options: dict[str, Any]) -> OperationSpec:
    hints = typing.get_type_hints(func)
    args_model: type[BaseModel] = NoArgs
    kinds: list[str] = []
    params = list(inspect.signature(func).parameters.values())[1:]  # skip self
    for param in params:
        hint = hints.get(param.name)
        if hint is Call and "call" not in kinds:
            kinds.append("call")
        elif isinstance(hint, type) and issubclass(hint, BaseModel) and "args" not in kinds:
            args_model = hint
            kinds.append("args")
        else:
            raise TypeError(
                f"operation {func.__qualname__}: parameter {param.name!r} must be annotated "
                "with a pydantic model (the arguments) or Call"
            )
    result = hints.get("return", Any)
    if typing.get_origin(result) is Prepared or result is Prepared:
        result = (typing.get_args(result) or (Any,))[0]
    return OperationSpec(
        name=options["name"] or func.__name__,
        func=func,
        args_model=args_model,
        result_adapter=TypeAdapter(result),
        params=tuple(kinds),
        is_async=inspect.iscoroutinefunction(func),
        admin_only=options["admin_only"],
        idempotent=options["idempotent"],
        journal=options["journal"],
        doc=inspect.cleandoc(func.__doc__ or "").split("\n\n")[0],
    )


class Plugin:
    """Base class of every plugin. Subclasses set ``name`` and ``version``."""

    name: ClassVar[str]
    version: ClassVar[str] = "0.1.0"
    description: ClassVar[str] = ""
    settings_model: ClassVar[type[BaseModel] | None] = None
    """Optional pydantic model of the plugin's settings (validated at setup)."""

    _operations: ClassVar[dict[str, OperationSpec]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        ops: dict[str, OperationSpec] = {}
        for base in reversed(cls.__mro__):
            for attr, value in vars(base).items():
                options = getattr(value, _OP_ATTR, None)
                if options is not None:
                    spec = _build_spec(value, options)
                    ops[spec.name] = spec
                    if attr.startswith("_"):
                        raise TypeError(f"operation {attr!r} must not be private")
        cls._operations = ops

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        raw = dict(settings or {})
        self.settings: BaseModel | None = (
            self.settings_model.model_validate(raw) if self.settings_model else None
        )
        self._ctx: PluginContext | None = None

    @property
    def ctx(self) -> PluginContext:
        if self._ctx is None:
            raise RuntimeError(f"plugin {self.name!r} used before setup()")
        return self._ctx

    @classmethod
    def operations(cls) -> dict[str, OperationSpec]:
        return dict(cls._operations)

    async def setup(self, ctx: PluginContext) -> None:
        """Called once with the endpoint's context; raise to mark the plugin unavailable."""
        self._ctx = ctx

    async def start(self) -> None:
        """Called when the endpoint starts consuming (start background work here)."""

    async def stop(self) -> None:
        """Called on graceful shutdown; stop background work. Must not hang."""

    def on_topology_change(self, endpoint: str, info: EndpointInfo) -> Any:
        """Called (on the event loop; a coroutine is run as a task) when an endpoint this
        endpoint can hear comes online or goes offline. Overriding it connects the
        endpoint's client at start."""

    async def invoke(self, spec: OperationSpec, args: BaseModel, call: Call) -> Any:
        """Run one operation (sync ones in a worker thread); return its JSON-able result."""
        params = [call if kind == "call" else args for kind in spec.params]
        bound = spec.func.__get__(self)
        if spec.is_async:
            result = await bound(*params)
        else:
            result = await asyncio.to_thread(bound, *params)
        if isinstance(result, Prepared):
            return result.value
        return spec.result_adapter.dump_python(result, mode="json")


__all__ = [
    "Call",
    "NoArgs",
    "OperationSpec",
    "Plugin",
    "PluginContext",
    "Prepared",
    "operation",
]
