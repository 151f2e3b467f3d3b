"""``key=value`` call arguments: values are JSON when they parse as JSON, else strings."""

from __future__ import annotations

import json
from typing import Any

from .errors import UsageError


def parse_value(text: str) -> Any:
    """``42`` → 42, ``true`` → True, ``[1,2]`` → list, ``{"a":1}`` → dict, ``hi`` → "hi"."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_pairs(pairs: list[str]) -> dict[str, Any]:
    """``["a=1", "b=x"]`` → ``{"a": 1, "b": "x"}``; a pair without ``=`` is a usage error."""
    args: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(
                f"argument {pair!r} is not KEY=VALUE",
                hint="example: orbit call demo sysinfo.metrics fresh=true sections='[\"cpu\"]'",
            )
        args[key] = parse_value(value)
    return args


def parse_args_json(text: str | None) -> dict[str, Any]:
    """The ``--args-json`` object (``@file`` reads a file)."""
    if not text:
        return {}
    if text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise UsageError(f"cannot read --args-json file: {exc}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--args-json is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError("--args-json must be a JSON object, e.g. '{\"fresh\": true}'")
    return value


def build_args(pairs: list[str], args_json: str | None) -> dict[str, Any]:
    """``--args-json`` first, then ``key=value`` pairs override its keys."""
    return {**parse_args_json(args_json), **parse_pairs(pairs)}


def split_operation(operation: str) -> tuple[str, str]:
    """``plugin.method`` → ``(plugin, method)``; anything else is a usage error."""
    plugin, sep, method = operation.partition(".")
    if not sep or not plugin or not method or "." in method:
        raise UsageError(
            f"operation {operation!r} is not PLUGIN.METHOD",
            hint="e.g. orbit.ping or sysinfo.metrics; `orbit describe ENDPOINT` lists them",
        )
    return plugin, method


__all__ = ["build_args", "parse_args_json", "parse_pairs", "parse_value", "split_operation"]
