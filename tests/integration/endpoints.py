"""Run real endpoint processes (``python -m orbit_endpoint``) for integration tests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from orbit_amqp import EntityNotFound, connect
from orbit_protocol import naming
from tests.testkit.local import KIT
from tests.testkit.local import declare_queue as declare_endpoint

ROOT = Path(__file__).resolve().parents[2]


async def consumer_count(url: str, endpoint: str) -> int:
    """Consumers on the endpoint's queue (-1: no such queue), by a passive declare."""
    connection = await connect(url, name="orbit-test probe")
    try:
        state = await (await connection.channel()).declare_queue(
            naming.request_queue(endpoint), passive=True
        )
    except EntityNotFound:
        return -1
    finally:
        await connection.close()
    return state.consumers


class EndpointProcess:
    """An endpoint subprocess with its own state dir (kept across restarts)."""

    def __init__(
        self,
        name: str,
        url: str,
        state_dir: Path,
        *,
        plugins: list[str] | None = None,
        pythonpath: list[Path] | None = None,
        **settings: Any,
    ) -> None:
        self.name, self.url, self.state_dir = name, url, state_dir
        self.pythonpath = [ROOT, *(pythonpath or [])]
        self.plugins = plugins if plugins is not None else [KIT]
        self.settings = settings
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = state_dir / f"{name}.log"
        self.starts = 0

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            ORBIT_ENDPOINT_NAME=self.name,
            ORBIT_ENDPOINT_URL=self.url,
            ORBIT_ENDPOINT_PLUGINS=json.dumps(self.plugins),
            ORBIT_ENDPOINT_STATE_DIR=str(self.state_dir),
            PYTHONPATH=os.pathsep.join(map(str, self.pythonpath)),
        )
        for key, value in self.settings.items():
            env[f"ORBIT_ENDPOINT_{key.upper()}"] = (
                value if isinstance(value, str) else json.dumps(value)
            )
        return env

    async def start(self, timeout: float = 30) -> EndpointProcess:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orbit_endpoint"],
            env=self.env(),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while await consumer_count(self.url, self.name) < 1:
            if self.proc.poll() is not None:
                raise RuntimeError(f"endpoint exited {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"endpoint {self.name} did not start:\n{self.log()}")
            await asyncio.sleep(0.1)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    async def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        for _ in range(300):
            if self.proc.poll() is not None:
                return self.proc.returncode
            await asyncio.sleep(0.05)
        self.proc.kill()
        return self.proc.wait()


__all__ = ["KIT", "EndpointProcess", "consumer_count", "declare_endpoint"]
