"""Orbit plugins: the SDK and the first-party features.

The SDK is ``base`` (the plugin contract), ``periodic`` (background rounds), ``storage``
(SQLite WAL) and ``testing``. Each feature is one sub-package holding its schema, endpoint
side, client helpers, CLI commands, Explorer page and README (``docs/architecture.md``).
"""

from .base import Call, NoArgs, OperationSpec, Plugin, PluginContext, Prepared, operation

__all__ = ["Call", "NoArgs", "OperationSpec", "Plugin", "PluginContext", "Prepared", "operation"]
