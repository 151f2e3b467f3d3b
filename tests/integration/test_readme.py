"""The shell blocks of README.md and examples/README.md work when pasted as written.

Each ```bash block runs in order with ``bash -euo pipefail`` in a scratch directory that
has the suite's ``.venv`` and ``examples/`` linked in, under a scratch ``HOME`` (so the
profile, endpoint state and staged files land there) and with no ``ORBIT_*`` settings but
the private node's ports, so that ``orbit broker up`` starts a node nobody else uses. A
block after ``<!-- readme-test: skip (why) -->`` is not run; one after
``<!-- readme-test: background URL -->`` runs until URL answers, then is stopped.
``pytest -k readme`` selects it.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from orbit_broker.ports import free_port

from .endpoints import ROOT

pytestmark = [pytest.mark.rabbit, pytest.mark.slow]
DOCS = [ROOT / "README.md", ROOT / "examples" / "README.md"]
BLOCK = re.compile(r"(?:<!-- readme-test: (?P<note>[^\n]*?) -->\n)?```bash\n(?P<code>.*?)```", re.S)


def shell_blocks(doc: Path) -> list[tuple[str, str]]:
    """``(note, code)`` of each bash block of ``doc`` (note ``""`` when it has none)."""
    return [(m["note"] or "", m["code"]) for m in BLOCK.finditer(doc.read_text())]


def test_the_readme_blocks_are_found() -> None:
    found = {str(doc.relative_to(ROOT)): shell_blocks(doc) for doc in DOCS}
    notes = [note.split()[0] for note, _ in found["README.md"] if note]
    assert notes == ["skip", "background"]  # the suite's own commands; the gateway
    assert all(code.strip() for blocks in found.values() for _, code in blocks)
    assert sum(len(b) for b in found.values()) >= 9


@pytest.fixture
def scratch(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    work, home = tmp_path / "work", tmp_path / "home"
    home.mkdir()
    work.mkdir()
    (work / ".venv").symlink_to(sys.prefix)  # the suite's venv, as .venv/bin/orbit
    (work / "examples").symlink_to(ROOT / "examples")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORBIT_")}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT))
    ports = {key: free_port() for key in ("AMQP", "MANAGEMENT", "DIST", "EPMD")}
    env.update({f"ORBIT_BROKER_{key}_PORT": str(port) for key, port in ports.items()})
    env["ORBIT_BROKER_NODE_NAME"] = f"orbit-readme-{secrets.token_hex(3)}"
    return work, env


def _background(code: str, url: str, work: Path, env: dict[str, str]) -> None:
    proc = subprocess.Popen(["bash", "-c", code], cwd=work, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"{code!r} exited {proc.returncode} before {url} answered"
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{url} did not answer within 60 s"
            time.sleep(0.3)
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C, as the README says
        proc.wait(30)


def _clean_up(work: Path, env: dict[str, str]) -> None:
    """After a failure: stop what the blocks started (endpoints, the node)."""
    state = Path(env["HOME"]) / ".local" / "state" / "orbit" / "endpoints"
    for pid_file in state.glob("*/endpoint.pid"):
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
    orbit = [str(work / ".venv" / "bin" / "orbit")]
    subprocess.run([*orbit, "broker", "down"], cwd=work, env=env, capture_output=True, timeout=120)


def run_blocks(doc: Path, work: Path, env: dict[str, str]) -> int:
    """Run ``doc``'s bash blocks in order as the module docstring says; how many ran."""
    ran_blocks = 0
    try:
        for note, code in shell_blocks(doc):
            if note.startswith("skip"):
                continue
            if note.startswith("background"):
                _background(code, note.split()[1], work, env)
                continue
            ran = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", code],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert ran.returncode == 0, (
                f"{doc.relative_to(ROOT)} block failed (exit {ran.returncode}):\n{code}\n"
                f"--- stdout\n{ran.stdout[-3000:]}\n--- stderr\n{ran.stderr[-3000:]}"
            )
            ran_blocks += 1
    except BaseException:
        _clean_up(work, env)
        raise
    assert not list(Path(env["HOME"]).glob(".local/state/orbit/endpoints/*/endpoint.pid"))
    return ran_blocks


@pytest.mark.timeout(300)  # `orbit broker up`, endpoints, the CLI: ~1 min here
def test_readme_shell_blocks_work_when_pasted(scratch: tuple[Path, dict[str, str]]) -> None:
    work, env = scratch
    assert run_blocks(DOCS[0], work, env) == 3
    assert (Path(env["HOME"]) / "big.bin").stat().st_size == 20_000_000  # `stage put` placed it
