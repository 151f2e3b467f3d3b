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
    jobs,
    plugins,
    pool,
    queues,
    stage,
    sysinfo,
    tasks,
    transfer,
)
from .options import DebugOpt

EPILOG = """\
[bold]Examples[/]

  [cyan]orbit broker up[/]                                      start a private local broker
  [cyan]orbit endpoint start --name demo --detach[/]            run an endpoint in the background
  [cyan]orbit endpoints[/]                                      who is online
  [cyan]orbit call demo orbit.ping[/]                           call an operation
  [cyan]orbit sysinfo demo[/]                                   host metrics of an endpoint
  [cyan]orbit events demo --count 5[/]                          tail events

Settings: flags > ORBIT_* environment > profile file ([dim]~/.config/orbit/profile.json[/])."""


class OrbitGroup(TyperGroup):
    """Root group: renders Orbit errors as ``[CODE] message`` instead of tracebacks."""

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
app.command("sysinfo", epilog=sysinfo.EPILOG)(sysinfo.sysinfo)
app.command("describe", epilog=describe.EPILOG)(describe.describe)
app.add_typer(plugins.app, name="plugins")
app.command("gateway", epilog=gateway.EPILOG)(gateway.gateway)
app.add_typer(jobs.app, name="job")
app.command("queues", epilog=queues.EPILOG)(queues.queues)
app.add_typer(stage.app, name="stage")
app.add_typer(transfer.app, name="transfer")
app.add_typer(tasks.app, name="task")
app.command("run", epilog=tasks.EPILOG)(tasks.run)
app.add_typer(pool.app, name="pool")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``orbit``)."""
    try:
        app(args=argv, prog_name="orbit")
    except SystemExit:
        raise
    except Exception as exc:  # anything not expected: short message, traceback with --debug
        sys.exit(errors.report_unexpected(exc))


__all__ = ["OrbitGroup", "app", "main"]
