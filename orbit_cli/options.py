"""Options shared by many commands, as reusable ``Annotated`` aliases.

``--url`` (env ``ORBIT_URL``), ``--json``, ``--timeout`` and ``--debug``. Connection
settings resolve as: flags > ``ORBIT_*`` environment > profile file > defaults; the flags
are handed to :class:`orbit_client.ClientSettings` as overrides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from orbit_protocol import naming


@dataclass
class State:
    """Process-wide CLI flags (set by the root callback and by each command)."""

    debug: bool = False


STATE = State()


def _set_debug(value: bool) -> bool:
    if value:
        STATE.debug = True
    return value


def _endpoint_name(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return naming.validate_name(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="ORBIT_URL",
        show_envvar=True,
        help="AMQP(S) URL with user, password and vhost (default: the profile file).",
        rich_help_panel="Connection",
    ),
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        "-t",
        min=0.1,
        help="Seconds to wait for the reply (default: the client setting, 60 s).",
        rich_help_panel="Connection",
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print raw JSON instead of tables (for scripts)."),
]
DebugOpt = Annotated[
    bool,
    typer.Option(
        "--debug",
        envvar="ORBIT_DEBUG",
        callback=_set_debug,
        is_eager=True,
        help="Show tracebacks and debug logs.",
    ),
]
EndpointArg = Annotated[
    str,
    typer.Argument(
        help="Endpoint name (as provisioned, e.g. [bold]demo[/]).",
        callback=_endpoint_name,
        show_default=False,
    ),
]


__all__ = [
    "STATE",
    "DebugOpt",
    "EndpointArg",
    "JsonOpt",
    "State",
    "TimeoutOpt",
    "UrlOpt",
]
