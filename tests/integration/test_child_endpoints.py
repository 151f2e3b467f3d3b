"""Child endpoints in batch jobs (``psij.submit_endpoint``), with real ssh tunnels.

Real parts: the broker, the parent endpoint (psij plugin), PSI/J's Slurm executor, the child
endpoint process started by the job script, OpenSSH's ``ssh`` and ``sshd`` (on 127.0.0.1,
own host key and config: ``tests/fakes/sshd.py``). Faked: the Slurm commands
(``tests/fakes/slurm``: ``sbatch`` runs the script in the background on this machine), with
a Slurm-like ``scancel`` in front (SIGTERM to the job, KillWait, then the fake's SIGKILL).
Each child gets its own broker user, provisioned like ``orbit broker provision --endpoint``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest

from orbit_broker.provision import EndpointSpec, Provisioner, ProvisionSpec
from orbit_client import AsyncOrbitClient, Conflict, OrbitError
from tests.testkit.eventually import eventually

from ..conftest import Broker
from ..fakes.sshd import Sshd
from .conftest import StartEndpoint
from .endpoints import consumer_count

pytestmark = [
    pytest.mark.rabbit,
    pytest.mark.slow,
    # find_spec, not importorskip: importing psij installs a SIGCHLD handler in pytest
    pytest.mark.skipif(find_spec("psij") is None, reason="psij-python is not installed"),
]

FAKES = Path(__file__).resolve().parents[1] / "fakes"
PSIJ = ["orbit_plugins.psij.plugin:PsijPlugin"]
SCANCEL = """#!/bin/bash
# Slurm-like scancel: SIGTERM to the job's processes, up to 5 s (KillWait) for them to end,
# then the fake scancel (marks the job cancelled, SIGKILL).
d=${FAKE_SLURM_DIR:?}
id="${@: -1}"
if [ -f "$d/jobs/$id.pid" ]; then
    pg=$(cat "$d/jobs/$id.pid")
    kill -TERM -- "-$pg" 2>/dev/null
    for _ in $(seq 50); do kill -0 -- "-$pg" 2>/dev/null || break; sleep 0.1; done
fi
exec "%s" "$@"
"""


@dataclass
class Hpc:
    """A fake Slurm cluster whose login and compute nodes are one real sshd."""

    tmp: Path
    slurm: Path
    sshd: Sshd
    credentials: Path

    def children(self, **overrides: Any) -> dict[str, Any]:
        settings = {
            "credentials_dir": str(self.credentials),
            "ssh_config": str(self.sshd.ssh_config),
            "login_host": "login01",
            "tunnel_timeout": 20,
        }
        return settings | overrides

    def slurm_parent(self) -> dict[str, Any]:
        """``plugin_settings`` of a parent endpoint that submits children to the fake Slurm
        (fast status polling)."""
        return {
            "psij": {
                "poll_interval": 0.2,
                "slurm_polling_interval": 1,
                "children": self.children(),
            }
        }

    def ssh_config_variant(self, name: str, old: str, new: str) -> str:
        path = self.tmp / name
        path.write_text(self.sshd.ssh_config.read_text().replace(old, new))
        return str(path)


@pytest.fixture
def hpc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Hpc]:
    if not Sshd.available():
        pytest.fail("sshd is missing: apt-get install openssh-server", pytrace=False)
    slurm, bin_dir, credentials = tmp_path / "fake-slurm", tmp_path / "bin", tmp_path / "creds"
    for d in (slurm, bin_dir, credentials):
        d.mkdir()
    credentials.chmod(0o700)
    scancel = bin_dir / "scancel"
    scancel.write_text(SCANCEL % (FAKES / "slurm" / "scancel"))
    scancel.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{FAKES / 'slurm'}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_DIR", str(slurm))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # PSI/J's ~/.psij/work
    for var in ("SLURM_JOB_ID", "PBS_JOBID"):
        monkeypatch.delenv(var, raising=False)
    sshd = Sshd(tmp_path / "sshd").start()
    try:
        yield Hpc(tmp_path, slurm, sshd, credentials)
    finally:
        for pid_file in (slurm / "jobs").glob("*.pid"):  # jobs a failed test left behind
            with contextlib.suppress(OSError, ValueError):
                os.killpg(int(pid_file.read_text()), signal.SIGKILL)
        sshd.stop()


async def provision_child(broker: Broker, vhost: str, hpc: Hpc, prefix: str) -> str:
    """A child name with its own broker user; its URL stored for the parent (mode 0600)."""
    name = f"{prefix}-{secrets.token_hex(3)}"
    prov = Provisioner(broker.management, broker.amqp_url(), vhost)
    result = await prov.provision(ProvisionSpec(endpoints=[EndpointSpec(name)], responder=False))
    url = result.credentials[name].url(broker.amqp_url(), vhost)
    path = hpc.credentials / f"{name}.url"
    path.write_text(url)
    path.chmod(0o600)
    return name


async def wait_online(client: AsyncOrbitClient, parent: str, job_id: str, child: str) -> None:
    async def answers() -> bool:
        try:
            return bool(await client.call(child, "orbit.ping", timeout=5))
        except OrbitError:
            status = await client.call(parent, "psij.get_job_status", job_id=job_id)
            if status["state"] in ("COMPLETED", "FAILED", "CANCELED"):
                pytest.fail(f"child job ended: {status}")
            raise

    await eventually(answers, timeout=60, interval=0.3, what=f"child {child} online")


async def wait_job(client: AsyncOrbitClient, parent: str, job_id: str) -> dict[str, Any]:
    async def ended() -> dict[str, Any] | None:
        status: dict[str, Any] = await client.call(parent, "psij.get_job_status", job_id=job_id)
        return status if status["state"] in ("COMPLETED", "FAILED", "CANCELED") else None

    return await eventually(ended, timeout=60, interval=0.3, what=f"job {job_id} ends")


async def no_consumer(amqp_url: str, child: str) -> None:
    async def gone() -> bool:
        return await consumer_count(amqp_url, child) == 0

    await eventually(gone, interval=0.2, what=f"{child}'s consumer gone")


async def wait_cancelled(hpc: Hpc, native_id: str) -> None:
    """The fake Slurm recorded a cancel of the job (``jobs/ID.cancel``; the Slurm-like
    ``scancel`` writes it only after the job's processes ended, so it may trail the job's end)."""
    record = hpc.slurm / "jobs" / f"{native_id}.cancel"
    await eventually(record.exists, interval=0.1, what=f"slurm job {native_id} cancelled")


@pytest.mark.parametrize("tunnel", ["none", "forward", "reverse"])
async def test_child_online_through_tunnel_then_offline_on_cancel(
    tunnel: str,
    hpc: Hpc,
    broker: Broker,
    vhost: str,
    start_endpoint: StartEndpoint,
    client: AsyncOrbitClient,
) -> None:
    child = await provision_child(broker, vhost, hpc, f"job-{tunnel}")
    settings = hpc.slurm_parent()
    parent = await start_endpoint("login", plugins=PSIJ, plugin_settings=settings)
    info = await client.call(
        "login",
        "psij.submit_endpoint",
        name=child,
        plugins=["sysinfo"],
        tunnel=tunnel,
        executor="slurm",
        spec={"resources": {"node_count": 1}, "attributes": {"duration": 600}},
    )
    assert (info["name"], info["tunnel"], info["executor"]) == (child, tunnel, "slurm")
    native = info["native_id"]
    job_dir = next((hpc.tmp / "login").rglob(f"jobs/{info['job_id']}"))
    password = urlsplit((hpc.credentials / f"{child}.url").read_text()).password
    assert password
    script = (hpc.slurm / "jobs" / f"{native}.job").read_text()
    assert "ORBIT_ENDPOINT_URL" not in script and password not in script  # env file only

    await wait_online(client, "login", info["job_id"], child)
    assert not (job_dir / "child.env").exists()  # read and deleted by the job
    about = await client.call(child, "child.info")
    assert (about["parent"], about["job_id"], about["tunnel"]) == ("login", info["job_id"], tunnel)
    assert about["allocation"]["job_id"] == native  # queue_info.job_allocation in the job
    host, port = about["broker"].rsplit(":", 1)
    ssh_pid: int | None = None
    assert host == "127.0.0.1"
    if tunnel == "none":
        assert int(port) == broker.port
    else:
        assert int(port) != broker.port  # the AMQP connection goes through the ssh tunnel
        if tunnel == "reverse":
            assert (job_dir / "tunnel.port").read_text() == port
            # the parent restarts: its ssh -R stays up and is re-attached, the child stays online
            ssh_pid = json.loads((job_dir / "tunnel.json").read_text())["pid"]
            await parent.stop()
            await client.call(child, "orbit.ping", timeout=10)
            await parent.start()
            await client.call(child, "orbit.ping", timeout=10)
        assert "Accepted publickey" in hpc.sshd.log()
    if tunnel == "none":
        with pytest.raises(Conflict, match=f"child endpoint '{child}' already runs in job"):
            await client.call("login", "psij.submit_endpoint", name=child)
    described = await client.call(child, "orbit.describe")
    assert {"sysinfo", "child"} <= set(described["plugins"])

    presence = await client.subscribe(child, "orbit", "presence")
    cancelled = await client.call("login", "psij.cancel_job", job_id=info["job_id"])
    assert cancelled["job_id"] == info["job_id"]
    deadline = time.monotonic() + 30
    while True:
        event = await presence.get(timeout=max(0.1, deadline - time.monotonic()))
        if event.data.get("state") == "offline":
            break
    # presence itself names the allocation the child stands for (orbit_endpoint.allocation)
    assert event.data["allocation"]["scheduler"] == "slurm"
    assert event.data["allocation"]["job_id"] == native
    final = await wait_job(client, "login", info["job_id"])
    assert final["state"] == "CANCELED", final
    logs = final["stdout"] + final["stderr"] + (hpc.tmp / "login" / "login.log").read_text()
    assert f"endpoint {child} stopped" in logs and password not in logs
    assert not await client.is_online(child)
    if ssh_pid is not None:
        assert "re-attached ssh -R" in parent.log()
        await asyncio.sleep(1.0)  # the watcher's next tick stops the re-attached tunnel
        assert not psutil.pid_exists(ssh_pid) or psutil.Process(ssh_pid).status() == "zombie"


async def test_tunnel_failures_cancel_the_allocation_and_say_why(
    hpc: Hpc,
    broker: Broker,
    vhost: str,
    start_endpoint: StartEndpoint,
    client: AsyncOrbitClient,
) -> None:
    async def parent(name: str, **children: Any) -> None:
        settings = {"poll_interval": 0.2, "slurm_polling_interval": 1}
        settings["children"] = hpc.children(**children)  # type: ignore[assignment]
        await start_endpoint(name, plugins=PSIJ, plugin_settings={"psij": settings})

    # reverse: the parent's key is refused by the compute node's sshd
    await parent("login-a", ssh_config=hpc.ssh_config_variant("key", "client_key", "host_key"))
    # forward: the login node's sshd is not where the ssh config says
    await parent(
        "login-b",
        ssh_config=hpc.ssh_config_variant("port", f"Port {hpc.sshd.port}", "Port 1"),
    )
    # reverse: the compute node never answers (a proxy that hangs), the tunnel times out
    hang = hpc.ssh_config_variant("hang", "HostName", "ProxyCommand sleep 61\n  HostName")
    await parent("login-t", ssh_config=hang, tunnel_timeout=3)
    events = await client.subscribe(None, "psij", "child_status")
    rev = await provision_child(broker, vhost, hpc, "job-rev")
    fwd = await provision_child(broker, vhost, hpc, "job-fwd")
    slow = await provision_child(broker, vhost, hpc, "job-slow")
    a = await client.call("login-a", "psij.submit_endpoint", name=rev, tunnel="reverse")
    b = await client.call("login-b", "psij.submit_endpoint", name=fwd, tunnel="forward")
    t = await client.call("login-t", "psij.submit_endpoint", name=slow, tunnel="reverse")

    final_a = await wait_job(client, "login-a", a["job_id"])
    assert final_a["state"] == "FAILED", final_a
    assert "reverse tunnel" in final_a["message"] and "ssh -R exited with 255" in final_a["message"]
    assert "Permission denied" in final_a["message"]  # the ssh stderr tail
    await wait_cancelled(hpc, a["native_id"])  # the allocation was cancelled

    final_b = await wait_job(client, "login-b", b["job_id"])
    assert final_b["state"] == "FAILED", final_b
    assert "forward tunnel via login01 failed" in final_b["message"]
    assert "Connection refused" in final_b["message"]
    await wait_cancelled(hpc, b["native_id"])  # the child waited for the parent's cancel

    final_t = await wait_job(client, "login-t", t["job_id"])
    assert final_t["state"] == "FAILED", final_t
    assert "was not up within 3 s" in final_t["message"]
    await wait_cancelled(hpc, t["native_id"])

    seen: dict[str, str] = {}
    deadline = time.monotonic() + 20
    while len(seen) < 3:
        event = await events.get(timeout=max(0.1, deadline - time.monotonic()))
        if event.data.get("state") == "failed":
            seen[event.data["name"]] = event.data["reason"]
    assert "Permission denied" in seen[rev] and "Connection refused" in seen[fwd]
    assert "not up within" in seen[slow]
    for name in (rev, fwd, slow):
        assert not await client.is_online(name)


async def test_missing_or_unsafe_credentials_are_refused(
    hpc: Hpc, start_endpoint: StartEndpoint, client: AsyncOrbitClient
) -> None:
    from orbit_client import InvalidArgs

    await start_endpoint(
        "login-c", plugins=PSIJ, plugin_settings={"psij": {"children": hpc.children()}}
    )
    with pytest.raises(InvalidArgs, match="no credentials for child endpoint 'nobody'"):
        await client.call("login-c", "psij.submit_endpoint", name="nobody")
    (hpc.credentials / "open.url").write_text("amqp://u:p@127.0.0.1:5672/x")
    (hpc.credentials / "open.url").chmod(0o644)
    with pytest.raises(InvalidArgs, match="readable by others"):
        await client.call("login-c", "psij.submit_endpoint", name="open")
    with pytest.raises(InvalidArgs):
        await client.call("login-c", "psij.submit_endpoint", name="x", tunnel="sideways")
    assert not list(hpc.slurm.glob("jobs/*.job"))  # nothing was submitted


async def test_cli_submit_waits_for_the_child_and_prints_its_allocation(
    hpc: Hpc,
    broker: Broker,
    vhost: str,
    amqp_url: str,
    start_endpoint: StartEndpoint,
    client: AsyncOrbitClient,
) -> None:
    from .test_psij_cli import cli_env, run

    child = await provision_child(broker, vhost, hpc, "job-cli")
    settings = hpc.slurm_parent()
    parent = await start_endpoint("login", plugins=PSIJ, plugin_settings=settings)
    env = cli_env(amqp_url, hpc.tmp)
    args = ["endpoint", "submit", "login", "--name", child, "--nodes", "2", "--time", "10:00"]
    code, out, err = await run(env, *args, "--tunnel", "reverse", "--plugins", "sysinfo")
    assert code == 0, err
    assert f"endpoint {child} online on" in out and "(tunnel reverse)" in out
    assert "allocation 1001 on nid001,nid002" in out  # fake scontrol's node list
    assert "role" in await client.call(child, "sysinfo.host_role", timeout=10)
    job_id = err.split("orbit job cancel login ")[1].split()[0]
    tunnel = json.loads(next((hpc.tmp / "login").rglob(f"jobs/{job_id}/tunnel.json")).read_text())
    code, out, err = await run(env, "job", "cancel", "login", job_id)
    assert code == 0, err
    final = await wait_job(client, "login", job_id)
    assert final["state"] == "CANCELED"
    await parent.stop()  # right after the job ended: its ssh -R must not be left behind
    assert (
        not psutil.pid_exists(tunnel["pid"]) or psutil.Process(tunnel["pid"]).status() == "zombie"
    )


async def test_local_executor_child_disappears_when_cancelled(
    hpc: Hpc,
    broker: Broker,
    vhost: str,
    amqp_url: str,
    start_endpoint: StartEndpoint,
    client: AsyncOrbitClient,
) -> None:
    """Without a batch system: PSI/J's local executor, no allocation; its cancel is SIGKILL."""
    child = await provision_child(broker, vhost, hpc, "job-local")
    settings = {"poll_interval": 0.2, "children": hpc.children()}
    await start_endpoint("laptop", plugins=PSIJ, plugin_settings={"psij": settings})
    info = await client.call("laptop", "psij.submit_endpoint", name=child, executor="local")
    await wait_online(client, "laptop", info["job_id"], child)
    about = await client.call(child, "child.info")
    assert about["allocation"] is None and about["parent"] == "laptop"
    await client.call("laptop", "psij.cancel_job", job_id=info["job_id"])
    assert (await wait_job(client, "laptop", info["job_id"]))["state"] == "CANCELED"
    await no_consumer(amqp_url, child)  # no goodbye after SIGKILL: its queue shows it gone


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def tunnel_ssh_pid(hpc: Hpc, tunnel: str, job_dir: Path) -> int:
    """The ssh process carrying this test's child connection: the parent's ``ssh -R`` from
    ``tunnel.json``; the child's ``ssh -L`` by its command line (this test's ssh config)."""
    if tunnel == "reverse":
        pid: int = json.loads((job_dir / "tunnel.json").read_text())["pid"]
        return pid
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if cmd[:1] == ["ssh"] and "-L" in cmd and str(hpc.sshd.ssh_config) in cmd:
            return proc.pid
    pytest.fail("no ssh -L with this test's ssh config is running")


@pytest.mark.parametrize("tunnel", ["forward", "reverse"])
async def test_tunnel_that_dies_while_the_child_runs_ends_it_and_fails_the_job(
    tunnel: str,
    hpc: Hpc,
    broker: Broker,
    vhost: str,
    amqp_url: str,
    start_endpoint: StartEndpoint,
    client: AsyncOrbitClient,
) -> None:
    child = await provision_child(broker, vhost, hpc, f"job-cut-{tunnel}")
    settings = hpc.slurm_parent()
    await start_endpoint("login", plugins=PSIJ, plugin_settings=settings)
    events = await client.subscribe("login", "psij", "child_status")
    info = await client.call("login", "psij.submit_endpoint", name=child, tunnel=tunnel)
    await wait_online(client, "login", info["job_id"], child)
    job_dir = next((hpc.tmp / "login").rglob(f"jobs/{info['job_id']}"))
    native = info["native_id"]
    job_group = int((hpc.slurm / "jobs" / f"{native}.pid").read_text())

    ssh = tunnel_ssh_pid(hpc, tunnel, job_dir)
    os.kill(ssh, signal.SIGKILL)  # the tunnel dies under the running child

    final = await wait_job(client, "login", info["job_id"])
    assert final["state"] == "FAILED", final
    what = "forward tunnel via login01" if tunnel == "forward" else "reverse tunnel to"
    flag = "-L" if tunnel == "forward" else "-R"
    assert final["message"].startswith(what), final
    assert f" closed: ssh {flag} was killed by SIGKILL" in final["message"], final
    await wait_cancelled(hpc, native)  # the allocation was cancelled
    deadline = time.monotonic() + 20
    while True:
        event = await events.get(timeout=max(0.1, deadline - time.monotonic()))
        if event.data.get("name") == child and event.data.get("state") == "failed":
            break
    assert event.data["reason"] == final["message"]
    await eventually(  # nothing of the job is left running (or unreaped)
        lambda: not group_alive(job_group), interval=0.2, what="the job's processes end"
    )
    await no_consumer(amqp_url, child)  # the child is gone from its queue


async def test_setup_runs_before_the_child_and_picks_its_python(
    hpc: Hpc,
    broker: Broker,
    vhost: str,
    start_endpoint: StartEndpoint,
    client: AsyncOrbitClient,
    tmp_path: Path,
) -> None:
    """``setup`` (the seed's RADICAL_ORBIT_SETUP): bash runs it in the job, then the child
    starts with the ``python3`` the setup put on PATH (here a wrapper that leaves a mark)."""
    env_bin = tmp_path / "site-env" / "bin"
    env_bin.mkdir(parents=True)
    marks = tmp_path / "python3-used"
    wrapper = env_bin / "python3"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> "{marks}"\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    child = await provision_child(broker, vhost, hpc, "job-setup")
    settings = {"poll_interval": 0.2, "children": hpc.children()}
    await start_endpoint("laptop-s", plugins=PSIJ, plugin_settings={"psij": settings})
    setup = f'export PATH="{env_bin}:$PATH"\necho loaded > "{tmp_path}/module-loaded"'
    info = await client.call(
        "laptop-s", "psij.submit_endpoint", name=child, executor="local", setup=setup
    )
    await wait_online(client, "laptop-s", info["job_id"], child)
    assert (tmp_path / "module-loaded").read_text() == "loaded\n"
    used = marks.read_text().splitlines()  # the launcher, then the endpoint it starts
    assert used[0].startswith("-m orbit_plugins.psij.child ")
    assert used[1].startswith("-m orbit_cli endpoint start --name job-setup")
    await client.call("laptop-s", "psij.cancel_job", job_id=info["job_id"])
    assert (await wait_job(client, "laptop-s", info["job_id"]))["state"] == "CANCELED"

    broken = "echo 'module: frameworks not found' >&2; exit 7"
    info = await client.call(
        "laptop-s", "psij.submit_endpoint", name=child, executor="local", setup=broken
    )
    failed = await wait_job(client, "laptop-s", info["job_id"])
    assert (failed["state"], failed["exit_code"]) == ("FAILED", 7)
    assert "module: frameworks not found" in failed["stderr"]
