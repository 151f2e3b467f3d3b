"""No secret in any log line or exception text (issue 8, security 6; docs/security.md).

Provisioned users, a real endpoint, a gateway with a Basic-auth login and a token login,
the dead-letter responder and failing CLI commands all run with debug logging; every log
file, stdout and stderr they wrote, and the text of the exceptions the client raises for a
refused login and an unreachable broker, are searched for every password and token.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from orbit_broker.local import free_port
from orbit_broker.provision import ClientSpec, EndpointSpec, Provisioner, ProvisionSpec
from orbit_client import AsyncOrbitClient
from orbit_protocol import OrbitError
from tests.testkit.cli import cli_env, orbit
from tests.testkit.eventually import eventually

from .endpoints import ROOT, EndpointProcess
from .gateway_kit import GatewayProcess

pytestmark = [pytest.mark.rabbit, pytest.mark.slow]


def with_password(url: str, password: str, port: int | None = None) -> str:
    parts = urlsplit(url)
    host = f"{parts.username}:{password}@{parts.hostname}:{port or parts.port}"
    return urlunsplit(parts._replace(netloc=host))


def exception_text(exc: BaseException) -> str:
    """What a caller could print or log: the traceback, and every chained exception."""
    text = "".join(traceback.format_exception(exc))
    seen: BaseException | None = exc
    while seen is not None:
        text += f"\n{seen!r}\n{seen}"
        seen = seen.__cause__ or seen.__context__
    return text


async def cli(tmp_path: Path, *args: str) -> tuple[int, str]:
    """``orbit ARGS --debug`` with an empty home (no profile); exit code and output."""
    env = cli_env(None, tmp_path, HOME=str(tmp_path / "home"))
    env.pop("ORBIT_PROFILE")
    ran = await orbit(env, *args, "--debug", timeout=120)
    return ran.rc, ran.output


async def test_no_secret_in_logs_or_exception_texts(
    broker: Any, vhost: str, tmp_path: Path
) -> None:
    tag = secrets.token_hex(2)
    ep, user, responder = f"ep-{tag}", f"cl-{tag}", f"responder-{tag}"
    prov = Provisioner(broker.management, broker.amqp_url(), vhost)
    result = await prov.provision(
        ProvisionSpec(
            endpoints=[EndpointSpec(ep)],
            clients=[ClientSpec(user, [ep])],
            responder_user=responder,
        )
    )
    url = {name: cred.url(broker.amqp_url(), vhost) for name, cred in result.credentials.items()}
    admin_url = broker.amqp_url(vhost)
    wrong = "Wr0ng-" + secrets.token_urlsafe(12)
    dead_port = free_port()
    texts: dict[str, str] = {}  # where -> text
    endpoint = EndpointProcess(
        ep, url[ep], tmp_path / ep, allowed_users=[user], heartbeat=2, debug=True
    )
    gateway = GatewayProcess(admin_url, tmp_path / "gateway.log", "--debug")
    responder_log = tmp_path / "responder.log"
    responder_proc: subprocess.Popen[bytes] | None = None
    token = ""
    try:
        await endpoint.start()
        with responder_log.open("ab") as sink:
            responder_proc = subprocess.Popen(
                [sys.executable, "-m", "orbit_cli", "broker", "serve", "--debug"],
                cwd=ROOT,
                env=dict(os.environ, ORBIT_RESPONDER_URL=url[responder], PYTHONPATH=str(ROOT)),
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        await gateway.start()

        # the gateway: a Basic-auth call, a refused Basic login, a token login and its use
        password = result.credentials[user].password
        async with httpx.AsyncClient(base_url=gateway.base, timeout=30) as http:
            ok = await http.post(
                f"/api/{ep}/testkit/echo", json={"value": 1}, auth=(user, password)
            )
            assert ok.json()["ok"], ok.text
            refused = await http.post(
                f"/api/{ep}/testkit/echo", json={"value": 1}, auth=(user, wrong)
            )
            assert refused.status_code == 401, refused.text
            texts["gateway 401 body"] = refused.text
            login = await http.post("/api/login", json={"user": user, "password": password})
            token = login.json()["token"]
            assert token
            bearer = {"Authorization": f"Bearer {token}"}
            assert (await http.get("/api/whoami", headers=bearer)).json()["user"] == user
            bad = await http.post("/api/login", json={"user": user, "password": wrong})
            assert bad.status_code == 401
            texts["gateway refused login body"] = bad.text

        # the CLI: a call that works, a wrong password, an unreachable broker
        code, out = await cli(tmp_path, "call", ep, "orbit.ping", "--url", url[user])
        assert code == 0, out
        texts["cli call (ok)"] = out
        code, out = await cli(
            tmp_path, "call", ep, "orbit.ping", "--url", with_password(url[user], wrong)
        )
        assert code != 0 and out.strip(), out
        texts["cli call (wrong password)"] = out
        code, out = await cli(
            tmp_path,
            "call",
            ep,
            "orbit.ping",
            "-t",
            "5",
            "--url",
            with_password(url[user], password, dead_port),
        )
        assert code != 0 and out.strip(), out
        texts["cli call (unreachable broker)"] = out

        # the client library's exceptions
        for where, bad_url in {
            "client exception (wrong password)": with_password(url[user], wrong),
            "client exception (unreachable broker)": with_password(url[user], password, dead_port),
        }.items():
            with pytest.raises(OrbitError) as caught:
                async with AsyncOrbitClient(url=bad_url, timeout=5):
                    pass
            texts[where] = exception_text(caught.value)

        # the dead-letter responder consumes orbit.dead (it logged its start)

        def consuming() -> bool:
            if responder_proc is None or responder_proc.poll() is not None:
                pytest.fail(f"the responder exited: {responder_log.read_text()}")
            queue = broker.management.get_queue(vhost, "orbit.dead")
            return queue is not None and queue.consumers > 0

        await eventually(consuming, timeout=30, interval=0.2, what="the responder consumes")
    finally:
        gateway.stop()
        if responder_proc is not None and responder_proc.poll() is None:
            responder_proc.terminate()
            responder_proc.wait(10)
        await endpoint.stop()
        for name in result.credentials:
            broker.management.delete_user(name)

    texts["endpoint log"] = endpoint.log_path.read_text(errors="replace")
    texts["gateway log"] = gateway.log_path.read_text(errors="replace")
    texts["responder log"] = responder_log.read_text(errors="replace")

    collected = tmp_path / "collected.txt"  # everything searched, for a failure's post-mortem
    collected.write_text("".join(f"===== {w}\n{t}\n" for w, t in texts.items()))
    # every text is real, so the check below can fail
    for where, text in texts.items():
        assert text.strip(), f"{where} is empty"
    assert "refused the credentials" in texts["client exception (wrong password)"]
    # the URLs themselves are logged and shown (masked), so a leak would be caught here
    assert f"{ep}:***@" in texts["endpoint log"]
    assert f"{user}:***@" in texts["cli call (wrong password)"]
    assert f"{user}:***@" in texts["client exception (unreachable broker)"]
    assert "consuming orbit.dead" in texts["responder log"]
    assert "login" in texts["gateway log"].lower() or "POST /api" in texts["gateway log"]

    found = {urlsplit(u).password for u in url.values()} | {broker.password, wrong, token}
    found_secrets = {s for s in found if s}
    assert len(found_secrets) == len(result.credentials) + 3
    leaks = [
        (where, secret[:4] + "…")
        for where, text in texts.items()
        for secret in found_secrets
        if secret in text
    ]
    sizes = ", ".join(f"{where} {len(text)}" for where, text in texts.items())
    print(f"\nsecrets: {len(found_secrets)} searched in {len(texts)} texts ({sizes} chars)")
    assert not leaks, leaks
