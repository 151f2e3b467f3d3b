"""Find, load and look up plugins: entry points of the group ``orbit.plugins`` or
``module:Class``.

A plugin that fails to import or to set up is recorded with its error instead of
stopping the endpoint; calls to it are answered ``UNAVAILABLE`` with the reason.
:class:`Registry` is where an operation name becomes a plugin method and arguments become
its pydantic model, with the documented error for each way that fails.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ValidationError

from orbit_plugins.base import OperationSpec, Plugin
from orbit_protocol import InvalidArgs, Unavailable, UnknownMethod, UnknownPlugin

ENTRY_POINT_GROUP = "orbit.plugins"
log = logging.getLogger(__name__)


@dataclass
class LoadedPlugin:
    """A plugin slot: the instance when it loaded, else the reason it did not."""

    name: str
    plugin: Plugin | None = None
    error: str | None = None

    @property
    def version(self) -> str:
        return self.plugin.version if self.plugin else "unavailable"


def available() -> dict[str, str]:
    """Installed plugin entry points: name -> ``module:attr``."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def installed() -> dict[str, type[Plugin] | Exception]:
    """Each installed plugin's class (imported, not instantiated), or why it fails to load."""
    found: dict[str, type[Plugin] | Exception] = {}
    for name in sorted(available()):
        try:
            found[name] = _resolve(name)
        except Exception as exc:  # a broken third-party plugin must not break the listing
            found[name] = exc
    return found


def describe_plugin(plugin: Plugin | type[Plugin]) -> dict[str, Any]:
    """Version, description and operations with their JSON Schemas: the entry of one plugin
    in ``orbit.describe``, ``orbit plugins list`` and the AsyncAPI document."""
    return {
        "version": plugin.version,
        "description": plugin.description,
        "operations": {
            op: {
                "doc": spec.doc,
                "admin_only": spec.admin_only,
                "idempotent": spec.idempotent,
                **spec.json_schemas(),
            }
            for op, spec in sorted(plugin.operations().items())
        },
    }


def _resolve(spec: str) -> type[Plugin]:
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        obj = getattr(importlib.import_module(module_name), attr)
    else:
        matches = entry_points(group=ENTRY_POINT_GROUP, name=spec)
        if not matches:
            known = ", ".join(sorted(available())) or "none"
            raise LookupError(f"no plugin named {spec!r} is installed (installed: {known})")
        obj = next(iter(matches)).load()
    if not (isinstance(obj, type) and issubclass(obj, Plugin)):
        raise TypeError(f"{spec!r} is not an orbit_plugins.Plugin subclass")
    return obj


def load(specs: list[str], settings: dict[str, dict[str, Any]]) -> dict[str, LoadedPlugin]:
    """Instantiate each plugin spec; failures become ``LoadedPlugin(error=...)``."""
    loaded: dict[str, LoadedPlugin] = {}
    for spec in specs:
        fallback = spec.rpartition(":")[2].lower() if ":" in spec else spec
        try:
            cls = _resolve(spec)
            plugin = cls(settings.get(cls.name))
        except Exception as exc:
            log.error("plugin %s failed to load: %s", spec, exc)
            loaded[fallback] = LoadedPlugin(fallback, error=f"{type(exc).__name__}: {exc}")
            continue
        if cls.name in loaded:
            raise ValueError(f"two plugins are named {cls.name!r}")
        loaded[cls.name] = LoadedPlugin(cls.name, plugin)
    return loaded


class Registry:
    """The endpoint's plugins by name (a failed one keeps its error)."""

    def __init__(self, plugins: dict[str, LoadedPlugin]) -> None:
        self.plugins = plugins

    def resolve(self, plugin_name: str, method: str) -> tuple[Plugin, OperationSpec]:
        slot = self.plugins.get(plugin_name)
        if slot is None:
            known = ", ".join(sorted(self.plugins))
            raise UnknownPlugin(
                f"this endpoint has no plugin {plugin_name!r} (it has: {known})",
                {"plugins": sorted(self.plugins)},
            )
        if slot.plugin is None:
            raise Unavailable(
                f"plugin {plugin_name!r} is configured but not available: {slot.error}",
                {"reason": slot.error},
            )
        spec = slot.plugin.operations().get(method)
        if spec is None:
            methods = sorted(slot.plugin.operations())
            raise UnknownMethod(
                f"plugin {plugin_name!r} has no operation {method!r}"
                f" (it has: {', '.join(methods)})",
                {"methods": methods},
            )
        return slot.plugin, spec

    def journals_args(self, plugin: str, method: str) -> bool:
        """Whether the journal keeps this operation's arguments and reply."""
        try:
            return self.resolve(plugin, method)[1].journal
        except (UnknownPlugin, UnknownMethod, Unavailable):
            return True  # the error reply is small and deterministic

    @staticmethod
    def validate(spec: OperationSpec, args: dict[str, Any]) -> BaseModel:
        try:
            return spec.args_model.model_validate(args)
        except ValidationError as exc:
            errors = [
                {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()
            ]
            summary = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'args'}: {e['msg']}" for e in errors
            )
            raise InvalidArgs(
                f"invalid arguments for {spec.name}: {summary}", {"errors": errors}
            ) from None


__all__ = [
    "ENTRY_POINT_GROUP",
    "LoadedPlugin",
    "Registry",
    "available",
    "describe_plugin",
    "installed",
    "load",
]
