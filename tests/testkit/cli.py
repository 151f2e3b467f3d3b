"""The suite's one way to run the ``orbit`` console script as a user would: a subprocess.

``cli_env(url, tmp_path)`` is a clean environment (no ``ORBIT_*`` from the developer's
shell, an empty profile, wide columns, no colour) aimed at ``url``; ``await orbit(env,
*args)`` and ``orbit_sync(env, *args)`` run ``orbit ARGS`` and return a :class:`Ran`.
In-process runs on the memory broker are the ``cli`` fixture of ``tests/testkit/local.py``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Ran:
    rc: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def argv(*args: str) -> list[str]:
    """``orbit ARGS``: the console script next to this Python, else ``python -m orbit_cli``."""
    script = Path(sys.executable).with_name("orbit")
    base = [str(script)] if script.exists() else [sys.executable, "-m", "orbit_cli"]
    return [*base, *args]


def cli_env(url: str | None, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORBIT_")}
    env |= {
        "ORBIT_PROFILE": str(tmp_path / "no-profile.json"),
        "COLUMNS": "200",
        "NO_COLOR": "1",
        "PYTHONPATH": str(ROOT),
    }
    if url is not None:
        env["ORBIT_URL"] = url
    return env | extra


async def orbit(env: dict[str, str] | None, *args: str, timeout: float = 60) -> Ran:
    proc = await asyncio.create_subprocess_exec(
        *argv(*args),
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


def orbit_sync(env: dict[str, str] | None, *args: str, timeout: float = 60) -> Ran:
    done = subprocess.run(
        argv(*args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    return Ran(done.returncode, done.stdout, done.stderr)


__all__ = ["ROOT", "Ran", "argv", "cli_env", "orbit", "orbit_sync"]
