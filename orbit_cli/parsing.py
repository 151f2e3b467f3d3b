"""Parsing of command-line values: ``KEY=VALUE`` items (call arguments, ``--env``, plugin
settings; values are JSON when they parse as JSON, else strings), ``--time`` durations."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .errors import UsageError


def parse_value(text: str) -> Any:
    """``42`` → 42, ``true`` → True, ``[1,2]`` → list, ``{"a":1}`` → dict, ``hi`` → "hi"."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def key_values(
    items: Iterable[str], problem: str = "{item!r} is not KEY=VALUE", hint: str | None = None
) -> dict[str, str]:
    """``["A=1", "B=x=y"]`` → ``{"A": "1", "B": "x=y"}`` (split at the first ``=``, the key
    stripped, a later key wins). An item without ``=`` or key is a :class:`UsageError` with
    the message ``problem`` (``{item}``: that item) and ``hint``."""
    found: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(problem.format(item=item), hint=hint)
        found[key] = value
    return found


def parse_pairs(pairs: list[str]) -> dict[str, Any]:
    """``["a=1", "b=x"]`` → ``{"a": 1, "b": "x"}``; a pair without ``=`` is a usage error."""
    raw = key_values(
        pairs,
        "argument {item!r} is not KEY=VALUE",
        hint="example: orbit call demo sysinfo.metrics fresh=true sections='[\"cpu\"]'",
    )
    return {key: parse_value(value) for key, value in raw.items()}


def plugin_settings(items: list[str], base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``["tasks.workers=4"]`` over ``base`` → ``{"tasks": {..., "workers": 4}}`` (values as in
    :func:`parse_value`); an item that is not ``PLUGIN.KEY=VALUE`` is a usage error."""
    merged = {plugin: dict(values) for plugin, values in base.items() if isinstance(values, dict)}
    problem = "setting {item!r} is not PLUGIN.KEY=VALUE"
    hint = "example: --set tasks.allow_cloudpickle=true --set sysinfo.prefetch_interval=5"
    for key, value in key_values(items, problem, hint).items():
        plugin, dot, name = key.partition(".")
        if not (plugin and dot and name):
            raise UsageError(problem.format(item=f"{key}={value}"), hint=hint)
        merged.setdefault(plugin, {})[name] = parse_value(value)
    return merged


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


def parse_duration(text: str) -> int:
    """Seconds of a ``--time`` value: ``S``, ``M:S`` or ``H:M:S``."""
    try:
        parts = [int(p) for p in text.split(":")]
    except ValueError:
        parts = []
    if not 1 <= len(parts) <= 3 or any(p < 0 for p in parts):
        raise UsageError(f"--time {text!r}: use seconds, M:S or H:M:S")
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def split_operation(operation: str) -> tuple[str, str]:
    """``plugin.method`` → ``(plugin, method)``; anything else is a usage error."""
    plugin, sep, method = operation.partition(".")
    if not sep or not plugin or not method or "." in method:
        raise UsageError(
            f"operation {operation!r} is not PLUGIN.METHOD",
            hint="e.g. orbit.ping or sysinfo.metrics; `orbit describe ENDPOINT` lists them",
        )
    return plugin, method


__all__ = [
    "build_args",
    "key_values",
    "parse_args_json",
    "parse_duration",
    "parse_pairs",
    "parse_value",
    "split_operation",
]
