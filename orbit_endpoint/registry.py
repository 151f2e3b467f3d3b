"""Find and load plugins: entry points of the group ``orbit.plugins`` or ``module:Class``.

A plugin that fails to import or to set up is recorded with its error instead of
stopping the endpoint; calls to it are answered ``UNAVAILABLE`` with the reason.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from orbit_plugins.base import Plugin

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


__all__ = ["ENTRY_POINT_GROUP", "LoadedPlugin", "available", "load"]
