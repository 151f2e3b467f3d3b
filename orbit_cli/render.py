"""Rich consoles and the small formatting helpers every command shares."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console
from rich.json import JSON
from rich.markup import escape

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def print_json(data: Any, *, raw: bool) -> None:
    """Raw compact JSON on stdout (for scripts), or colourful indented JSON."""
    text = json.dumps(data, default=str, sort_keys=False)
    if raw:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    else:
        console.print(JSON(text, default=str))


def error(code: str, message: str, hint: str | None = None) -> None:
    """``[CODE] message`` in red on stderr, then an optional dim hint."""
    line = f"[bold red]\\[{escape(code)}][/] [red]{escape(message)}[/]"
    err_console.print(line, soft_wrap=True, emoji=False)  # "H:M:S" is no emoji code
    if hint:
        err_console.print(f"[dim]{escape(hint)}[/]", soft_wrap=True, emoji=False)


def success(message: str) -> None:
    err_console.print(f"[green]✓[/] {message}", soft_wrap=True)


def info(message: str) -> None:
    err_console.print(f"[dim]{message}[/]", soft_wrap=True)


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


def human_bytes(value: float | None) -> str:
    if value is None:
        return "–"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(size) < 1024 or unit == "PiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PiB"  # pragma: no cover


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def percent_bar(percent: float | None, width: int = 20) -> str:
    """``████░░░░ 42.0%`` coloured green/yellow/red by load."""
    if percent is None:
        return "–"
    filled = max(0, min(width, round(percent / 100 * width)))
    colour = "green" if percent < 70 else "yellow" if percent < 90 else "red"
    return f"[{colour}]{'█' * filled}[/][dim]{'░' * (width - filled)}[/] {percent:5.1f}%"


def clock(ts: float | datetime | None = None) -> str:
    """Local wall-clock time ``HH:MM:SS.mmm``."""
    if isinstance(ts, datetime):
        ts = ts.timestamp()
    ts = time.time() if ts is None else ts
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")[:-3]


def ago(seconds: float) -> str:
    return "just now" if seconds < 1 else f"{human_duration(seconds)} ago"


def yes_no(flag: bool | None) -> str:
    if flag is None:
        return "–"
    return "[green]yes[/]" if flag else "[dim]no[/]"


def summarize(data: Any, limit: int = 100) -> str:
    """One-line ``key=value`` summary of an event's data, cut at ``limit`` characters."""
    if isinstance(data, dict):
        text = " ".join(f"{k}={_short(v)}" for k, v in data.items() if v is not None)
    else:
        text = _short(data)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(str(k) for k in value) + "}"
    if isinstance(value, list):
        return f"[{len(value)}]" if len(value) > 3 else json.dumps(value, default=str)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


__all__ = [
    "ago",
    "clock",
    "console",
    "err_console",
    "error",
    "human_bytes",
    "human_duration",
    "info",
    "mask_url",
    "percent_bar",
    "print_json",
    "success",
    "summarize",
    "yes_no",
]
