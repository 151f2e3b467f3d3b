"""``orbit plugins list``: plugins installed here (entry points of ``orbit.plugins``)."""

from __future__ import annotations

from typing import Any

import typer

from .. import render
from ..options import DebugOpt, JsonOpt

app = typer.Typer(
    help="Plugins installed in this Python environment.",
    rich_markup_mode="rich",
    no_args_is_help=True,
)


@app.command(
    "list",
    epilog="[bold]Examples[/]\n\n  [cyan]orbit plugins list[/]\n  [cyan]orbit plugins list --json[/]",  # noqa: E501
)
def list_plugins(json_out: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Show installed plugins: name, class, version, operations (or why it fails to load)."""
    from orbit_endpoint.registry import available

    rows = [_inspect(name, target) for name, target in sorted(available().items())]
    if json_out:
        render.print_json(rows, raw=True)
        return
    from rich.table import Table

    table = Table(header_style="bold", title="[bold]Installed plugins[/]", title_justify="left")
    for column in ("name", "class", "version", "operations / error"):
        table.add_column(column)
    for row in rows:
        detail = ", ".join(row["operations"]) if row["error"] is None else f"[red]{row['error']}[/]"
        table.add_row(f"[cyan]{row['name']}[/]", row["target"], row["version"] or "–", detail)
    render.console.print(table)


def _inspect(name: str, target: str) -> dict[str, Any]:
    """Import the plugin class (not instantiate it) to read its version and operations."""
    import importlib

    row: dict[str, Any] = {
        "name": name,
        "target": target,
        "version": None,
        "operations": [],
        "error": None,
    }
    module, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
        row["version"] = str(getattr(cls, "version", "") or "") or None
        row["description"] = getattr(cls, "description", None)
        row["operations"] = sorted(_operations(cls))
    except Exception as exc:  # a broken third-party plugin must not break the listing
        row["error"] = f"{type(exc).__name__}: {exc}"
    return row


def _operations(cls: Any) -> list[str]:
    from orbit_plugins.base import Plugin

    if isinstance(cls, type) and issubclass(cls, Plugin):
        return list(cls.operations())
    raise TypeError(f"{cls!r} is not an orbit_plugins.Plugin subclass")
