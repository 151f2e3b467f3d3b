"""How the CLI turns exceptions into ``[CODE] message`` on stderr and an exit code.

Exit codes: 0 success, 1 an Orbit error (endpoint offline, invalid args, …), 2 usage,
configuration or authentication errors, 130 interrupted. Tracebacks only with ``--debug``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import render
from .options import STATE

if TYPE_CHECKING:
    from orbit_protocol import OrbitError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """An expected failure of the CLI itself (not of a remote call)."""

    def __init__(
        self, message: str, *, code: str = "CLI", hint: str | None = None, exit_code: int = 1
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.hint, self.exit_code = code, message, hint, exit_code

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class UsageError(CliError):
    """Bad flags or configuration: exit code 2."""

    def __init__(self, message: str, *, hint: str | None = None, code: str = "USAGE") -> None:
        super().__init__(message, code=code, hint=hint, exit_code=EXIT_USAGE)


def hint_for(exc: OrbitError) -> str | None:
    """A next step for the common failures."""
    from orbit_protocol import (
        AuthenticationFailed,
        BrokerError,
        EndpointOffline,
        InvalidArgs,
        NotAuthorized,
        UnknownMethod,
        UnknownPlugin,
    )

    if isinstance(exc, AuthenticationFailed):
        return "check the user and password in --url / ORBIT_URL / the profile file"
    if isinstance(exc, BrokerError):
        unreachable = "reach" in exc.message or "unreachable" in exc.message
        return (
            "is the broker running? start one with `orbit broker up`, or pass --url"
            if unreachable
            else None
        )
    if isinstance(exc, EndpointOffline):
        return "start it: `orbit endpoint start --name NAME`; `orbit endpoints` lists who is online"
    if isinstance(exc, NotAuthorized):
        if "admin" in exc.message:
            return "the endpoint's owner can restart it with --admin USER"
        if "may not call" in exc.message or "broker refused" in exc.message:
            return (
                "ask the admin: `orbit broker grant CLIENT ENDPOINT`;"
                " the endpoint needs --allow CLIENT"
            )
        return None  # a plugin's own refusal (paths, Globus consent …) explains itself
    if isinstance(exc, UnknownPlugin | UnknownMethod):
        return "`orbit describe ENDPOINT` lists its plugins and operations"
    if isinstance(exc, InvalidArgs):
        return "`orbit describe ENDPOINT` shows the argument fields of each operation"
    return None


def exit_code_for(exc: OrbitError) -> int:
    from orbit_protocol import AuthenticationFailed, NotAuthorized

    return EXIT_USAGE if isinstance(exc, AuthenticationFailed | NotAuthorized) else EXIT_ERROR


def code_for(exc: OrbitError) -> str:
    """The wire code; local authentication failures get their own, clearer label."""
    from orbit_protocol import AuthenticationFailed

    return "AUTHENTICATION_FAILED" if isinstance(exc, AuthenticationFailed) else exc.code.value


def report_orbit_error(exc: OrbitError) -> int:
    render.error(code_for(exc), exc.message, hint_for(exc))
    if STATE.debug and exc.details:
        render.print_json(exc.details, raw=False)
    _traceback()
    return exit_code_for(exc)


def report_cli_error(exc: CliError) -> int:
    render.error(exc.code, exc.message, exc.hint)
    _traceback()
    return exc.exit_code


def report_unexpected(exc: BaseException) -> int:
    hint = None if STATE.debug else "run again with --debug for the traceback"
    render.error("INTERNAL", f"unexpected {type(exc).__name__}: {exc}", hint)
    _traceback()
    return EXIT_ERROR


def _traceback() -> None:
    if STATE.debug:
        render.err_console.print_exception(show_locals=False)


__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "CliError",
    "UsageError",
    "code_for",
    "exit_code_for",
    "hint_for",
    "report_cli_error",
    "report_orbit_error",
    "report_unexpected",
]
