"""Parts of child endpoints without a broker: the secret env file, URL rewriting, ssh options,
outcome, the allocation a child announces."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orbit_plugins.psij import child, children, jobdir, tunnel
from orbit_plugins.psij.child_schema import ChildSettings
from orbit_plugins.psij.schema import JobSpec
from orbit_plugins.psij.store import JobRecord
from orbit_plugins.testing import FakeContext
from orbit_protocol import InvalidArgs

FAKES = Path(__file__).resolve().parents[1] / "fakes"


def test_secret_file_is_owner_only_even_when_it_existed(tmp_path: Path) -> None:
    path = tmp_path / "child.env"
    path.write_text("old")
    path.chmod(0o644)
    old = os.umask(0)
    try:
        children._write_secret(path, '{"ORBIT_ENDPOINT_URL": "amqp://u:pw@h/v"}')
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text() == '{"ORBIT_ENDPOINT_URL": "amqp://u:pw@h/v"}'


def test_with_address_keeps_credentials_and_vhost() -> None:
    url = "amqps://job%2D1:p%40ss@broker.example:5671/orbit?heartbeat=10"
    assert tunnel.with_address(url, "127.0.0.1", 40001) == (
        "amqps://job-1:p%40ss@127.0.0.1:40001/orbit?heartbeat=10"
    )


def test_ssh_options_are_non_interactive_and_checked() -> None:
    opts = tunnel.ssh_options(ChildSettings(ssh_config="/c", known_hosts="/k"))
    assert opts[:2] == ["-F", "/c"]
    for want in ("BatchMode=yes", "ExitOnForwardFailure=yes", "StrictHostKeyChecking=yes"):
        assert want in opts
    assert "UserKnownHostsFile=/k" in opts


def test_allocated_port_line() -> None:
    line = "Allocated port 41235 for remote forward to 127.0.0.1:5672\n"
    found = tunnel.ALLOCATED.search("debug\n" + line)
    assert found and found.group(1) == "41235"


def test_credentials_file_checks(tmp_path: Path) -> None:
    cfg = ChildSettings(credentials_dir=str(tmp_path))
    with pytest.raises(InvalidArgs, match="no credentials"):
        children.child_url(cfg, "job1")
    path = tmp_path / "job1.url"
    path.write_text("amqp://job1:pw@broker:5672/orbit\n")
    path.chmod(0o640)
    with pytest.raises(InvalidArgs, match="readable by others"):
        children.child_url(cfg, "job1")
    path.chmod(0o600)
    assert children.child_url(cfg, "job1") == "amqp://job1:pw@broker:5672/orbit"
    path.write_text("http://broker/")
    with pytest.raises(InvalidArgs, match="no amqp"):
        children.child_url(cfg, "job1")


def test_outcome_turns_a_tunnel_failure_into_failed(tmp_path: Path) -> None:
    rec = JobRecord("j1", "alice", "slurm", JobSpec(executable="x"), str(tmp_path), "o", "e")
    assert children.outcome(rec, "CANCELED", None, None) == ("CANCELED", None, None)
    (tmp_path / jobdir.FAILURE).write_text("reverse tunnel to nid001 failed: denied\n")
    assert children.outcome(rec, "ACTIVE", None, None) == ("ACTIVE", None, None)
    assert children.outcome(rec, "CANCELED", None, None) == (
        "FAILED",
        None,
        "reverse tunnel to nid001 failed: denied",
    )


def test_ended_names_the_signal_that_killed_ssh() -> None:
    assert tunnel.ended(255) == "exited with 255"
    assert tunnel.ended(-9) == "was killed by SIGKILL"
    assert tunnel.ended(-200) == "was killed by signal 200"


async def test_the_allocation_is_what_queue_info_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``child.info`` announces ``queue_info.job_allocation``, found by its entry point."""
    monkeypatch.setenv("PATH", f"{FAKES / 'slurm'}:/usr/bin:/bin")
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    found = await child.job_allocation(FakeContext(tmp_path))
    assert found is not None and found["job_id"] == "77"
    assert found["nodelist"] == ["nid001", "nid002"]  # the fake scontrol's hostnames
    monkeypatch.delenv("SLURM_JOB_ID")
    assert await child.job_allocation(FakeContext(tmp_path)) is None
