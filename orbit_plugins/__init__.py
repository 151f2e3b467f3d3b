"""Orbit plugins: the plugin contract (``orbit_plugins.base``) and first-party plugins.

Layering: imports ``orbit_protocol`` only. Each plugin lives in its own sub-package with
``schema.py`` (pydantic models, importable by clients without heavy dependencies) and
``plugin.py`` (the handlers, loaded by endpoints through the ``orbit.plugins`` entry points).
"""

from .base import Call, NoArgs, OperationSpec, Plugin, PluginContext, Prepared, operation

__all__ = ["Call", "NoArgs", "OperationSpec", "Plugin", "PluginContext", "Prepared", "operation"]
