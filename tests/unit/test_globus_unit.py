"""The globus plugin without a broker: missing globus-sdk, argument rules, error mapping."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import globus_sdk
import pytest

from orbit_plugins.base import Call
from orbit_plugins.globus.plugin import GlobusPlugin
from orbit_plugins.globus.schema import RegisterArgs
from orbit_protocol import NotAuthorized, Unavailable


class Ctx:
    endpoint = "ep"
    logger = logging.getLogger("test.globus")

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = str(state_dir)

    def emit(self, topic: str, data: dict[str, Any], *, persistent: bool = False) -> None:
        pass


async def test_without_globus_sdk_the_plugin_is_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "globus_sdk", None)
    with pytest.raises(Unavailable, match="globus-sdk is not installed"):
        await GlobusPlugin().setup(Ctx(tmp_path))


def test_register_args_never_show_the_token() -> None:
    args = RegisterArgs(access_token="very-secret")  # type: ignore[arg-type]
    assert "very-secret" not in repr(args) and "very-secret" not in str(args.model_dump())
    for bad in ({}, {"access_token": "a", "refresh_token": "b"}, {"refresh_token": "b"}):
        with pytest.raises(ValueError):
            RegisterArgs.model_validate(bad)


async def test_calls_need_registration_and_local_needs_a_collection(tmp_path: Path) -> None:
    plugin = GlobusPlugin({"max_retries": 0, "transfer_base_url": "http://127.0.0.1:9/"})
    await plugin.setup(Ctx(tmp_path))
    call = Call("r1", "alice", "ep")
    with pytest.raises(NotAuthorized, match="register"):
        plugin.get_task(plugin.operations()["get_task"].args_model(task_id="t"), call)  # type: ignore[arg-type]
    plugin.register(RegisterArgs(access_token="t"), call)  # type: ignore[arg-type]
    from orbit_protocol import InvalidArgs

    with pytest.raises(InvalidArgs, match="no Globus collection"):
        plugin._collection("local", call)
    assert plugin._collection("abc", call) == "abc"
    with pytest.raises(Unavailable, match="cannot reach Globus"):
        plugin.get_endpoint(plugin.operations()["get_endpoint"].args_model(endpoint_id="x"), call)  # type: ignore[arg-type]
    assert isinstance(globus_sdk.TransferClient, type)
