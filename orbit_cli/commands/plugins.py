"""``orbit plugins list``: plugins installed here (entry points of ``orbit.plugins``)."""

from __future__ import annotations

from typing import Any

import typer

from .. import render
from ..options import JsonOpt

app = typer.Typer(
    help="Plugins installed in this Python environment.",
    rich_markup_mode="rich",
    no_args_is_help=True,
)


@app.command(
    "list",
    epilog="[bold]Examples[/]\n\n  [cyan]orbit plugins list[/]\n  [cyan]orbit plugins list --json[/]",  # noqa: E501
)
def list_plugins(json_out: JsonOpt = False) -> None:
    """Show installed plugins: name, class, version, operations (or why it fails to load)."""
    from orbit_endpoint.registry import available, describe_plugin, installed

    targets = available()
    rows = []
    for name, cls in installed().items():
        row: dict[str, Any] = {"name": name, "target": targets[name], "version": None}
        if isinstance(cls, Exception):
            rows.append(row | {"operations": [], "error": f"{type(cls).__name__}: {cls}"})
            continue
        info = describe_plugin(cls)
        rows.append(
            row
            | {
                "version": info["version"] or None,
                "error": None,
                "description": info["description"],
                "operations": sorted(info["operations"]),
            }
        )
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
