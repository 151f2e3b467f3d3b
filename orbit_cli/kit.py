"""What a feature's commands use: common options, a client from the profile, output, errors.

A plugin distribution adds commands to ``orbit`` with an entry point in the group
``orbit.cli`` naming a ``register(app: typer.Typer)`` function (``docs/plugins/authoring.md``)::

    [project.entry-points."orbit.cli"]
    myplugin = "my_package.cli:register"
"""

from __future__ import annotations

from . import render, session
from .errors import CliError, UsageError
from .options import EndpointArg, JsonOpt, TimeoutOpt, UrlOpt
from .parsing import key_values, parse_duration

COMMAND_GROUP = "orbit.cli"

__all__ = [
    "COMMAND_GROUP",
    "CliError",
    "EndpointArg",
    "JsonOpt",
    "TimeoutOpt",
    "UrlOpt",
    "UsageError",
    "key_values",
    "parse_duration",
    "render",
    "session",
]
