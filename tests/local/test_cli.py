"""The ``orbit`` commands against an endpoint on the memory broker, run in-process.

The app runs in a worker thread with its own event loop, exactly as the console script
runs it; ``tests/integration/test_cli_e2e.py`` keeps the real subprocesses and node.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import pytest

from orbit_plugins.sysinfo.schema import Metrics
from tests.testkit.local import CliResult, Local

Cli = Callable[..., Awaitable[CliResult]]
EP = "cli-ep"


@pytest.fixture
async def endpoint(local: Local) -> str:
    await local.endpoint(EP, plugins=["sysinfo"])
    return EP


async def test_call_prints_the_result(endpoint: str, cli: Cli) -> None:
    ran = await cli("call", EP, "orbit.ping", "--json")
    assert ran.exit_code == 0, ran.stderr
    result = json.loads(ran.stdout)
    assert result["pong"] is True and result["endpoint"] == EP
    pretty = await cli("call", EP, "sysinfo.metrics", 'sections=["cpu"]')
    assert pretty.exit_code == 0, pretty.stderr
    assert '"cores_logical"' in pretty.stdout


async def test_call_errors_are_codes_and_exit_status(endpoint: str, cli: Cli) -> None:
    ran = await cli("call", EP, "sysinfo.nope")
    assert ran.exit_code == 1 and ran.stderr.startswith("[UNKNOWN_METHOD]")
    assert "Traceback" not in ran.stderr
    ran = await cli("call", EP, "sysinfo.metrics", "fresh=maybe")
    assert ran.exit_code == 1 and ran.stderr.startswith("[INVALID_ARGS]")
    ran = await cli("call", "nobody-here", "orbit.ping")
    assert ran.exit_code == 1 and ran.stderr.startswith("[ENDPOINT_OFFLINE]")
    ran = await cli("call", EP, "orbit.ping", "not-a-pair")
    assert ran.exit_code == 2 and ran.stderr.startswith("[USAGE]")


async def test_sysinfo_cards_and_json(endpoint: str, cli: Cli) -> None:
    ran = await cli("sysinfo", EP)
    assert ran.exit_code == 0, ran.stderr
    for title in ("System", "CPU", "Memory", "Disks", "Network"):
        assert title in ran.stdout
    raw = await cli("sysinfo", EP, "--json", "--fresh")
    assert raw.exit_code == 0, raw.stderr
    metrics = Metrics.model_validate_json(raw.stdout)
    assert metrics.system is not None and metrics.cpu is not None


async def test_events_count_one(endpoint: str, cli: Cli) -> None:
    ran = await cli("events", EP, "--count", "1", "--timeout", "20", "--json")
    assert ran.exit_code == 0, ran.stderr
    lines = ran.stdout.strip().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["endpoint"] == EP
    text = await cli("events", EP, "--topic", "presence", "-n", "1", "-t", "20")
    assert text.exit_code == 0, text.stderr
    assert f"{EP}.orbit.presence" in text.stdout


async def test_describe_and_endpoints(endpoint: str, cli: Cli) -> None:
    ran = await cli("describe", EP, "--json")
    assert ran.exit_code == 0, ran.stderr
    assert "metrics" in json.loads(ran.stdout)["plugins"]["sysinfo"]["operations"]
    table = await cli("describe", EP)
    assert "sysinfo.metrics" in table.stdout
    listed = await cli("endpoints", "--wait", "3", "--json")
    assert listed.exit_code == 0, listed.stderr
    rows = {row["endpoint"]: row for row in json.loads(listed.stdout)}
    assert rows[EP]["online"] is True and "sysinfo" in rows[EP]["plugins"]
