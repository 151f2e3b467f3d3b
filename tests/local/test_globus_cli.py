"""``orbit transfer`` in-process against an endpoint on the memory broker: real globus-sdk,
fake Transfer API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes.globus_api import FakeTransfer
from tests.local.conftest import StartEndpoint
from tests.testkit.local import local_env as base_env
from tests.testkit.local import orbit_inprocess as orbit

LOCAL = "11111111-2222-3333-4444-555555555555"
REMOTE = "99999999-8888-7777-6666-555555555555"


async def test_transfer_submit_wait_status_ls_cancel(
    start_endpoint: StartEndpoint, amqp_url: str, tmp_path: Path
) -> None:
    with FakeTransfer("cli-token-123", duration=0.5) as fake:
        settings = {"transfer_base_url": fake.url, "max_retries": 0, "local_collection": LOCAL}
        await start_endpoint("gcli", plugins=["globus"], plugin_settings={"globus": settings})
        env = base_env(amqp_url, tmp_path) | {"GLOBUS_ACCESS_TOKEN": "cli-token-123"}
        args = ("local", REMOTE, "/~/in/", "/data/in/", "-r", "--label", "cli")
        ran = await orbit(env, "transfer", "submit", "gcli", *args, "--wait", "--json")
        assert ran.rc == 0, ran.stderr
        task = json.loads(ran.stdout)
        assert task["status"] == "SUCCEEDED" and task["source_endpoint_id"] == LOCAL

        del env["GLOBUS_ACCESS_TOKEN"]  # the endpoint still holds the registration
        ran = await orbit(env, "transfer", "status", "gcli", task["task_id"])
        assert ran.rc == 0 and "SUCCEEDED" in ran.stdout and "cli" in ran.stdout

        ran = await orbit(env, "transfer", "ls", "gcli", "local", "/~/")
        assert ran.rc == 0 and "a.txt" in ran.stdout, ran.stderr

        fake.duration = float("inf")
        ran = await orbit(env, "transfer", "submit", "gcli", *args, "--json")
        slow = json.loads(ran.stdout)["task_id"]
        ran = await orbit(env, "transfer", "wait", "gcli", slow, "--max-wait", "1")
        assert ran.rc == 1 and "ACTIVE" in ran.stdout
        ran = await orbit(env, "transfer", "cancel", "gcli", slow)
        assert ran.rc == 0 and "Canceled" in ran.stderr
        ran = await orbit(env, "transfer", "list", "gcli", "--json")
        assert {t["status"] for t in json.loads(ran.stdout)} == {"SUCCEEDED", "FAILED"}

        ran = await orbit(env, "transfer", "status", "gcli", slow, "--token", "bad")
        assert ran.rc == 2 and "[NOT_AUTHORIZED]" in ran.stderr and "bad" not in ran.stderr


async def test_transfer_register_with_a_refresh_token(
    start_endpoint: StartEndpoint, amqp_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeTransfer("unused-access-token") as fake:
        monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_AUTH", fake.url)  # the endpoint inherits it
        settings = {"transfer_base_url": fake.url, "max_retries": 0, "local_collection": LOCAL}
        await start_endpoint("gref", plugins=["globus"], plugin_settings={"globus": settings})
        env = base_env(amqp_url, tmp_path)
        ran = await orbit(env, "transfer", "register", "gref", "--refresh-token", "x")
        assert ran.rc == 2 and "--client-id" in ran.stderr
        refresh = fake.refresh_token
        env |= {"GLOBUS_REFRESH_TOKEN": refresh, "GLOBUS_CLIENT_ID": fake.client_id}
        ran = await orbit(env, "transfer", "register", "gref")
        assert ran.rc == 0 and "registered refresh token" in ran.stderr, ran.stderr
        assert fake.grants == 1 and refresh not in ran.stdout + ran.stderr
        ran = await orbit(env, "transfer", "ls", "gref", "local", "/~/")
        assert ran.rc == 0 and "a.txt" in ran.stdout, ran.stderr
        ran = await orbit(env, "transfer", "register", "gref")  # rotated away: refused
        assert ran.rc == 2 and "[NOT_AUTHORIZED]" in ran.stderr and refresh not in ran.stderr
