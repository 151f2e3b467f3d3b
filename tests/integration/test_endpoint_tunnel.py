"""``orbit endpoint start --tunnel forward --tunnel-via HOST``: the endpoint reaches the broker
through a real ``ssh -L`` (OpenSSH client and a private sshd, tests/fakes/sshd.py), detached,
with its readiness ping through the same tunnel; a killed ssh is opened again on the same port
and the endpoint reconnects; ``orbit endpoint stop`` takes the tunnel with it."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from orbit_broker.topology import declare_all
from orbit_client import AsyncOrbitClient
from tests.testkit.cli import cli_env, orbit
from tests.testkit.eventually import eventually

from ..fakes.sshd import Sshd

pytestmark = [
    pytest.mark.rabbit,
    pytest.mark.slow,
    pytest.mark.skipif(not Sshd.available(), reason="needs OpenSSH's sshd and ssh"),
]


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    server = Sshd(tmp_path / "sshd").start()
    yield server
    server.stop()


def tunnel_ssh(config: Path) -> list[psutil.Process]:
    """The ``ssh -L`` processes that use this test's ssh config."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if cmd[:1] == ["ssh"] and "-L" in cmd and str(config) in cmd:
            found.append(proc)
    return found


async def test_forward_tunnel_detached_survives_ssh_death_and_stops_with_it(
    sshd: Sshd, amqp_url: str, client: AsyncOrbitClient, tmp_path: Path
) -> None:
    env = cli_env(amqp_url, tmp_path)
    state = tmp_path / "state"
    start = ["endpoint", "start", "--name", "tun1", "--url", amqp_url, "--plugins", "sysinfo"]
    start += ["--state-dir", str(state), "--tunnel", "forward", "--tunnel-via", "login01"]
    start += ["--ssh-config", str(sshd.ssh_config), "--detach"]
    await declare_all(amqp_url, endpoints=["tun1"])
    ran = await orbit(env, *start)
    assert ran.rc == 0, ran.output
    port = int((state / "tun1" / "tunnel.port").read_text())
    assert "running, pid" in ran.stderr and "ping" in ran.stderr
    [ssh] = tunnel_ssh(sshd.ssh_config)
    assert f"127.0.0.1:{port}:127.0.0.1:" in " ".join(ssh.cmdline()) and "login01" in ssh.cmdline()
    assert (await client.call("tun1", "orbit.ping"))["pong"] is True

    os.kill(ssh.pid, signal.SIGKILL)  # the endpoint's broker connection goes with it

    async def reopened() -> bool:
        now = tunnel_ssh(sshd.ssh_config)
        return bool(now) and now[0].pid != ssh.pid

    await eventually(reopened, timeout=20, interval=0.2, what="the tunnel is opened again")
    pong = await eventually(
        lambda: client.call("tun1", "orbit.ping", timeout=3), timeout=30, interval=0.5
    )
    assert pong["endpoint"] == "tun1"
    log = (state / "tun1" / "endpoint.log").read_text()
    assert "tunnel via login01 was killed by SIGKILL" in log and "opening it again" in log

    ran = await orbit(env, "endpoint", "stop", "--name", "tun1", "--state-dir", str(state))
    assert ran.rc == 0, ran.output
    await eventually(lambda: not tunnel_ssh(sshd.ssh_config), timeout=10, what="ssh stopped")
    assert not (state / "tun1" / "tunnel.port").exists()


async def test_tunnel_options_are_checked(amqp_url: str, tmp_path: Path) -> None:
    env = cli_env(amqp_url, tmp_path)
    base = ["endpoint", "start", "--name", "tun2", "--url", amqp_url]
    ran = await orbit(env, *base, "--tunnel", "forward")
    assert ran.rc == 2 and "--tunnel-via HOST" in ran.stderr
    ran = await orbit(env, *base, "--tunnel", "reverse", "--tunnel-via", "x")
    assert ran.rc == 2 and "orbit endpoint submit" in ran.stderr
    bad = tmp_path / "ssh_config"
    bad.write_text("Host *\n  HostName 127.0.0.1\n  Port 1\n  ConnectTimeout 2\n")
    ran = await orbit(
        env,
        *base,
        "--tunnel",
        "forward",
        "--tunnel-via",
        "login01",
        "--ssh-config",
        str(bad),
        "--state-dir",
        str(tmp_path / "s"),
    )
    assert ran.rc != 0 and "forward tunnel via login01 failed: ssh -L exited with 255" in ran.stderr
