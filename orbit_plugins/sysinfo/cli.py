"""``orbit sysinfo EP``: host metrics as cards and tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from orbit_cli.kit import EndpointArg, JsonOpt, TimeoutOpt, UrlOpt, UsageError, render, session

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

    from orbit_client import AsyncOrbitClient
    from orbit_plugins.sysinfo.schema import (
        CpuInfo,
        DiskInfo,
        GpuInfo,
        InterfaceInfo,
        MemoryInfo,
        Metrics,
        SystemInfo,
    )

EPILOG = """\
[bold]Examples[/]

  [cyan]orbit sysinfo demo[/]                         cached snapshot (refreshed every 30 s)
  [cyan]orbit sysinfo demo --fresh[/]                 collect now
  [cyan]orbit sysinfo demo -s cpu -s memory[/]        only some sections
  [cyan]orbit sysinfo demo --json | jq .memory[/]     raw JSON"""

SECTIONS = ("system", "cpu", "memory", "disks", "network", "gpus")


def sysinfo(
    endpoint: EndpointArg,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Collect now instead of the cached snapshot.")
    ] = False,
    section: Annotated[
        list[str] | None,
        typer.Option(
            "--section", "-s", help=f"Only these sections ({', '.join(SECTIONS)}); repeatable."
        ),
    ] = None,
    json_out: JsonOpt = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Show the system, CPU, memory, disks, network and GPUs of an endpoint's host."""
    unknown = sorted(set(section or []) - set(SECTIONS))
    if unknown:
        raise UsageError(
            f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}"
        )

    async def work(client: AsyncOrbitClient) -> Any:
        return await client.plugin(endpoint, "sysinfo").metrics(
            fresh=fresh, sections=section or None
        )

    raw = session.run(work, url=url, timeout=timeout)
    if json_out:
        render.print_json(raw, raw=True)
        return
    from orbit_plugins.sysinfo.schema import Metrics

    render.console.print(metrics_view(endpoint, Metrics.model_validate(raw)))


# -- views ------------------------------------------------------------------------------


def metrics_view(endpoint: str, m: Metrics) -> RenderableType:
    from rich.columns import Columns
    from rich.console import Group
    from rich.rule import Rule

    cards = [card for card in (_system(m.system), _cpu(m.cpu), _memory(m.memory)) if card]
    parts: list[RenderableType] = [
        Rule(f"[bold]{endpoint}[/] · collected {render.clock(m.collected_at)}", style="blue"),
    ]
    if cards:
        parts.append(Columns(cards, equal=False, expand=False))
    if m.disks is not None:
        parts.append(_disks(m.disks))
    if m.network is not None:
        parts.append(_network(m.network))
    if m.gpus is not None:
        parts.append(_gpus(m.gpus))
    return Group(*parts)


def _card(title: str, rows: list[tuple[str, str]]) -> RenderableType:
    from rich.panel import Panel
    from rich.table import Table

    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column()
    for key, value in rows:
        grid.add_row(key, value)
    return Panel(grid, title=f"[bold]{title}[/]", title_align="left", border_style="blue")


def _system(s: SystemInfo | None) -> RenderableType | None:
    if s is None:
        return None
    load = " ".join(f"{x:.2f}" for x in s.load_avg) if s.load_avg else "–"
    return _card(
        "System",
        [
            ("host", f"[bold]{s.hostname}[/]" + (f" ({s.fqdn})" if s.fqdn != s.hostname else "")),
            ("os", s.os_release or s.os),
            ("kernel", f"{s.kernel} {s.arch}"),
            ("python", s.python),
            ("user", s.user),
            ("uptime", render.human_duration(s.uptime_seconds)),
            ("load", load),
            ("sessions", ", ".join(s.users) or "–"),
        ],
    )


def _cpu(c: CpuInfo | None) -> RenderableType | None:
    if c is None:
        return None
    cores = f"{c.cores_physical or '?'} physical / {c.cores_logical} logical"
    freq = f"{c.freq_mhz:.0f} MHz" if c.freq_mhz else "–"
    if c.freq_max_mhz:
        freq += f" (max {c.freq_max_mhz:.0f})"
    busiest = max(c.per_cpu_percent, default=0.0)
    return _card(
        "CPU",
        [
            ("model", c.model or c.vendor or "–"),
            ("cores", cores),
            ("freq", freq),
            ("usage", render.percent_bar(c.percent)),
            ("busiest", render.percent_bar(busiest)),
        ],
    )


def _memory(mem: MemoryInfo | None) -> RenderableType | None:
    if mem is None:
        return None
    swap = mem.swap
    return _card(
        "Memory",
        [
            ("total", render.human_bytes(mem.total)),
            ("used", render.human_bytes(mem.total - mem.available)),
            ("available", render.human_bytes(mem.available)),
            ("usage", render.percent_bar(mem.percent)),
            (
                "swap",
                f"{render.human_bytes(swap.used)} of {render.human_bytes(swap.total)}"
                if swap.total
                else "none",
            ),
        ],
    )


NUMERIC = {"size", "free", "rx", "tx", "speed", "mtu", "memory", "temp", "power"}


def _table(title: str, *columns: str) -> Table:
    from rich.table import Table

    table = Table(title=f"[bold]{title}[/]", title_justify="left", header_style="bold")
    for name in columns:
        if name in NUMERIC:
            table.add_column(name, justify="right", no_wrap=True)
        else:
            table.add_column(name, no_wrap=name in {"use", "util", "shared"})
    return table


def _disks(disks: list[DiskInfo]) -> RenderableType:
    table = _table("Disks", "mount", "device", "type", "shared", "size", "free", "use")
    for d in sorted(disks, key=lambda d: d.mountpoint):
        shared = f"[yellow]yes[/] {d.shared_kind or ''}" if d.shared else "[dim]no[/]"
        use = render.percent_bar(d.percent, width=8) if d.error is None else f"[red]{d.error}[/]"
        mount = d.mountpoint + (" [dim](ro)[/]" if d.read_only else "")
        kind = d.fstype + (f" [dim]{d.media}[/]" if d.media else "")
        table.add_row(
            mount,
            d.device,
            kind,
            shared,
            render.human_bytes(d.total),
            render.human_bytes(d.free),
            use,
        )
    return table


def _network(interfaces: list[InterfaceInfo]) -> RenderableType:
    table = _table("Network", "interface", "up", "addresses", "speed", "mtu", "rx", "tx")
    for i in interfaces:
        addresses = "\n".join(a.address for a in i.addresses if a.family != "mac") or "–"
        speed = f"{i.speed_mbps} Mb/s" if i.speed_mbps else "–"
        name = i.name + (" [dim](loopback)[/]" if i.is_loopback and i.name != "lo" else "")
        table.add_row(
            name,
            render.yes_no(i.is_up),
            addresses,
            speed,
            str(i.mtu or "–"),
            render.human_bytes(i.bytes_recv),
            render.human_bytes(i.bytes_sent),
        )
    return table


def _gpus(gpus: list[GpuInfo]) -> RenderableType:
    from rich.text import Text

    if not gpus:
        return Text("GPUs: none detected", style="dim")
    table = _table("GPUs", "#", "vendor", "name", "memory", "util", "temp", "power", "driver")
    for g in gpus:
        memory = f"{render.human_bytes(g.memory_used)} / {render.human_bytes(g.memory_total)}"
        table.add_row(
            str(g.index),
            g.vendor,
            g.name,
            memory,
            render.percent_bar(g.utilization_percent, width=10),
            f"{g.temperature_c:.0f} °C" if g.temperature_c is not None else "–",
            f"{g.power_w:.0f} W" if g.power_w is not None else "–",
            g.driver_version or "–",
        )
    return table


def register(app: typer.Typer) -> None:
    """Add ``orbit sysinfo`` (entry point group ``orbit.cli``)."""
    app.command("sysinfo", epilog=EPILOG)(sysinfo)
