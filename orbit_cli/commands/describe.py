"""``orbit describe EP``: plugins, operations and their argument fields."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from .. import render, session
from ..options import EndpointArg, JsonOpt, TimeoutOpt, UrlOpt

if TYPE_CHECKING:
    from rich.console import RenderableType

    from orbit_client import AsyncOrbitClient

EPILOG = """\
[bold]Examples[/]

  [cyan]orbit describe demo[/]
  [cyan]orbit describe demo --json | jq '.plugins.sysinfo.operations | keys'[/]"""


def describe(
    endpoint: EndpointArg,
    json_out: JsonOpt = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """List an endpoint's plugins and operations with their argument fields (orbit.describe)."""

    async def work(client: AsyncOrbitClient) -> Any:
        return await client.call(endpoint, "orbit.describe")

    info = session.run(work, url=url, timeout=timeout)
    if json_out:
        render.print_json(info, raw=True)
        return
    render.console.print(_header(info))
    for name, plugin in info.get("plugins", {}).items():
        render.console.print(_plugin(name, plugin))


def _header(info: dict[str, Any]) -> RenderableType:
    from rich.panel import Panel

    versions = info.get("versions", {})
    text = (
        f"[bold]{info.get('endpoint')}[/] on [bold]{info.get('host')}[/] · {info.get('platform')}\n"
        f"orbit {versions.get('orbit')} · protocol v{info.get('protocol')} · "
        f"python {versions.get('python')} · cloudpickle {versions.get('cloudpickle') or '–'}\n"
        f"up since {render.clock(info.get('started_at'))}"
    )
    return Panel(text, border_style="blue", expand=False)


def _plugin(name: str, plugin: dict[str, Any]) -> RenderableType:
    from rich.table import Table
    from rich.text import Text

    if not plugin.get("available", True):
        return Text.from_markup(f"[bold]{name}[/] [red]unavailable[/]: {plugin.get('error')}")
    table = Table(
        title=f"[bold]{name}[/] {plugin.get('version', '')} "
        f"[dim]{escape(plugin.get('description') or '')}[/]",
        title_justify="left",
        header_style="bold",
    )
    table.add_column("operation", style="cyan", no_wrap=True)
    table.add_column("arguments")
    table.add_column("flags", style="dim")
    table.add_column("description")
    for op, spec in plugin.get("operations", {}).items():
        flags = ", ".join(f for f in ("admin_only", "idempotent") if spec.get(f)) or ""
        doc = (spec.get("doc") or "").strip().splitlines()
        table.add_row(
            f"{name}.{op}", argument_fields(spec.get("args") or {}), flags, doc[0] if doc else ""
        )
    return table


def argument_fields(schema: dict[str, Any]) -> str:
    """``name: type = default`` per property of a JSON Schema object; required ones bold."""
    props: dict[str, Any] = schema.get("properties") or {}
    if not props:
        return "[dim]–[/]"
    required = set(schema.get("required") or [])
    lines = []
    for field, spec in props.items():
        kind = escape(_type_of(spec, schema.get("$defs") or {}))
        default = f" = {escape(json.dumps(spec['default']))}" if "default" in spec else ""
        label = f"[bold]{escape(field)}[/]" if field in required else escape(field)
        lines.append(f"{label}: [green]{kind}[/]{default}")
    return "\n".join(lines)


def _type_of(spec: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in spec:
        name = str(spec["$ref"]).rsplit("/", 1)[-1]
        target = defs.get(name, {})
        return _type_of(target, defs) if "enum" in target else name
    if "anyOf" in spec:
        return " | ".join(_type_of(s, defs) for s in spec["anyOf"])
    if "enum" in spec:
        return "|".join(map(str, spec["enum"]))
    kind = spec.get("type", "any")
    if kind == "array":
        return f"list[{_type_of(spec.get('items') or {}, defs)}]"
    return str(kind)
