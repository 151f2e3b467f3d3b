"""The ``orbit`` command: one sub-app or command per noun, errors rendered in one place."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from . import errors
from .commands import (
    broker,
    call,
    describe,
    endpoint,
    endpoints,
    events,
    gateway,
    plugins,
    pool,
)
from .options import DebugOpt, add_debug_option

EPILOG = """\
[bold]Examples[/]

  [cyan]orbit broker up[/]                                      start a private local broker
  [cyan]orbit endpoint start --name demo --detach[/]            run an endpoint in the background
  [cyan]orbit endpoints[/]                                      your endpoints, online or not
  [cyan]orbit call demo orbit.ping[/]                           call an operation
  [cyan]orbit sysinfo demo[/]                                   host metrics of an endpoint
  [cyan]orbit events demo --count 5[/]                          tail events

Settings: flags > ORBIT_* environment > profile file ([dim]~/.config/orbit/profile.json[/])."""


class OrbitGroup(TyperGroup):
    """Root group: renders Orbit errors as ``[CODE] message`` instead of tracebacks, and gives
    every command the ``--debug`` flag (see :func:`.options.add_debug_option`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_debug_option(self)

    def invoke(self, ctx: Any) -> Any:
        from pydantic import ValidationError

        from orbit_protocol import OrbitError

        try:
            return super().invoke(ctx)
        except OrbitError as exc:
            raise typer.Exit(errors.report_orbit_error(exc)) from None
        except errors.CliError as exc:
            raise typer.Exit(errors.report_cli_error(exc)) from None
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()
            )
            err = errors.UsageError(f"invalid settings: {problems}", code="CONFIG")
            raise typer.Exit(errors.report_cli_error(err)) from None
        except KeyboardInterrupt:
            raise typer.Exit(errors.EXIT_INTERRUPTED) from None


app = typer.Typer(
    name="orbit",
    cls=OrbitGroup,
    help="Call plugins on HPC endpoints through RabbitMQ.",
    epilog=EPILOG,
    rich_markup_mode="rich",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from orbit_protocol.version import PROTOCOL_VERSION

        typer.echo(f"orbit {_orbit_version()} (protocol v{PROTOCOL_VERSION})")
        raise typer.Exit()


def _orbit_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("orbit")
    except PackageNotFoundError:
        return "0+unknown"


@app.callback()
def root(
    debug: DebugOpt = False,
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Call plugins on HPC endpoints through RabbitMQ."""


app.add_typer(broker.app, name="broker")
app.add_typer(endpoint.app, name="endpoint")
app.command("endpoints", epilog=endpoints.EPILOG)(endpoints.endpoints)
app.command("call", epilog=call.EPILOG)(call.call)
app.command("events", epilog=events.EPILOG)(events.events)
app.command("describe", epilog=describe.EPILOG)(describe.describe)
app.add_typer(plugins.app, name="plugins")
app.command("gateway", epilog=gateway.EPILOG)(gateway.gateway)
app.add_typer(pool.app, name="pool")


def add_feature_commands(target: typer.Typer) -> None:
    """Commands of the feature packages and of installed plugin distributions (entry point
    group ``orbit.cli``); one that fails to load is named on stderr and left out."""
    from importlib.metadata import entry_points

    from .kit import COMMAND_GROUP

    for ep in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        try:
            ep.load()(target)
        except Exception as exc:
            print(f"orbit: the commands of {ep.name!r} did not load: {exc}", file=sys.stderr)


add_feature_commands(app)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``orbit``)."""
    try:
        app(args=argv, prog_name="orbit")
    except SystemExit:
        raise
    except Exception as exc:  # anything not expected: short message, traceback with --debug
        sys.exit(errors.report_unexpected(exc))


__all__ = ["OrbitGroup", "app", "main"]
