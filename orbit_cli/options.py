"""Options shared by many commands, as reusable ``Annotated`` aliases.

``--url`` (env ``ORBIT_URL``), ``--json``, ``--timeout`` and ``--debug``. Connection
settings resolve as: flags > ``ORBIT_*`` environment > profile file > defaults; the flags
are handed to :class:`orbit_client.ClientSettings` as overrides.

``--debug`` is accepted by the root (``orbit --debug call …``) and by every command
(``orbit call … --debug``); it only sets :data:`STATE`. A command reads ``STATE.debug`` and
does not declare the flag: :func:`add_debug_option` gives it the option (a command that must
see its own flag's value declares ``debug: DebugOpt`` and keeps it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer
from typer.core import TyperGroup, TyperOption

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


def _takes_debug(debug: DebugOpt = False) -> None:
    """Never called: the command :func:`debug_option` takes its ``--debug`` option from."""


def debug_option() -> TyperOption:
    """A new ``--debug`` option, built from :data:`DebugOpt` (same flag, env, help), that
    passes no argument to the command: it only sets ``STATE.debug``."""
    probe = typer.Typer(add_completion=False)
    probe.command()(_takes_debug)
    (option,) = typer.main.get_command(probe).params
    assert isinstance(option, TyperOption)
    option.expose_value = False
    return option


def add_debug_option(group: TyperGroup) -> None:
    """Append ``--debug`` to every command under ``group`` that has no ``debug`` parameter
    (sub-groups themselves get none, as before)."""
    for command in group.commands.values():
        if isinstance(command, TyperGroup):
            add_debug_option(command)
        elif not any(param.name == "debug" for param in command.params):
            command.params.append(debug_option())


EndpointArg = Annotated[
    str,
    typer.Argument(
        help="Endpoint name (as provisioned, e.g. [bold]demo[/]).",
        callback=_endpoint_name,
        show_default=False,
    ),
]

NameOpt = Annotated[
    str,
    typer.Option(
        "--name", "-n", help="Endpoint name (its queue is orbit.ep.NAME).", show_default=False
    ),
]
"""An endpoint's own name (``orbit endpoint start|stop|status|submit``)."""


__all__ = [
    "STATE",
    "DebugOpt",
    "EndpointArg",
    "JsonOpt",
    "NameOpt",
    "State",
    "TimeoutOpt",
    "UrlOpt",
    "add_debug_option",
    "debug_option",
]
