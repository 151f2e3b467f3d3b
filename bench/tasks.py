#!/usr/bin/env python
"""Task throughput: no-op function tasks through Orbit vs Celery on the same broker, one run.

    .venv/bin/python bench/tasks.py [--url URL] [--tasks N] [--rounds R] [--json-out FILE]

Without ``--url`` a private RabbitMQ node (``orbit_broker.local.LocalNode``) is started in a
temporary directory on free ports and stopped at the end. Variants:

  orbit    ``list(OrbitExecutor(ep).map(noop, range(N)))``: a cloudpickled no-op function,
           submits batched by the executor (5 ms linger, up to 2000 tasks per message), run
           by the ``tasks`` plugin of ``python -m orbit_endpoint`` in worker subprocesses
           (workers = cores), futures resolved from ``task_status_batch`` events.
  celery   ``group(noop.s(i) for i in range(N)).apply_async().get()``: Celery 5, prefork
           pool with ``--concurrency`` = cores, ``rpc://`` result backend, the same broker.
  seed     the old stack's published figure, a constant (not measured here): ~6,500 no-op
           function tasks/s on localhost (``plans/broker_architecture_plan.md``, quoting
           ``rhapsody_throughput.out``; see ../shared/reference/seed_orbit.md §"numbers").

Each round times N tasks from the first submit to the last result; the median over rounds
is reported, with the ratios orbit/celery (target ≥ 3) and orbit/seed, and orbit's absolute
tasks/s (target ≥ 10,000). Exit status is 0 whatever the numbers: this is a measurement.
See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SEED_TASKS_PER_S = 6500.0
SEED_SOURCE = (
    "radical.orbit plans/broker_architecture_plan.md quoting rhapsody_throughput.out:"
    " ~6.5 k no-op function tasks/s on localhost (rhapsody 'noop' backend; conditions not"
    " recorded); see /work/shared/reference/seed_orbit.md"
)
TARGET_VS_CELERY = 3.0
TARGET_TASKS_PER_S = 10_000.0
ENDPOINT = "bench-tasks"
CELERY_BROKER_ENV = "ORBIT_BENCH_CELERY_BROKER"


def noop(x: int) -> None:
    """The task: does nothing (returns None)."""
    return None


# --------------------------------------------------------------------------------------
# Celery app (imported by the worker subprocess as ``bench.tasks:celery_app``)
# --------------------------------------------------------------------------------------


def make_celery(broker: str) -> Any:
    from celery import Celery  # type: ignore[import-untyped]

    app = Celery("orbit_bench", broker=broker, backend="rpc://")
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )
    app.task(name="bench.noop")(noop)
    return app


celery_app = make_celery(os.environ[CELERY_BROKER_ENV]) if CELERY_BROKER_ENV in os.environ else None


# --------------------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------------------


def start_private_node(workdir: Path) -> Any:
    from orbit_broker.local import LocalNode, free_port

    node = LocalNode(
        data_dir=workdir / "broker",
        name=f"orbit-bench-tasks-{os.getpid()}",
        amqp_port=free_port(),
        management_port=free_port(),
        dist_port=free_port(),
        epmd_port=free_port(),
    )
    node.start(wait=True, timeout=90)
    return node


async def declare_endpoint(url: str) -> None:
    from orbit_broker.topology import declare_all

    await declare_all(url, endpoints=[ENDPOINT])


def start_endpoint(url: str, workers: int, state_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        ORBIT_ENDPOINT_NAME=ENDPOINT,
        ORBIT_ENDPOINT_URL=url,
        ORBIT_ENDPOINT_PLUGINS=json.dumps(["orbit_plugins.tasks.plugin:TasksPlugin"]),
        ORBIT_ENDPOINT_PLUGIN_SETTINGS=json.dumps(
            {"tasks": {"workers": workers, "allow_cloudpickle": True}}
        ),
        ORBIT_ENDPOINT_STATE_DIR=str(state_dir),
        PYTHONPATH=str(ROOT),
    )
    # e.g. ORBIT_BENCH_ENDPOINT_PYARGS="-m cProfile -o /tmp/endpoint.prof"
    argv = [sys.executable, *os.environ.get("ORBIT_BENCH_ENDPOINT_PYARGS", "").split()]
    with log.open("ab") as out:
        return subprocess.Popen(
            [*argv, "-m", "orbit_endpoint"], env=env, cwd=ROOT, stdout=out, stderr=out
        )


async def wait_consumer(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until the endpoint consumes its queue."""
    import aio_pika

    from orbit_protocol import naming

    deadline = time.monotonic() + timeout
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        while True:
            queue = await channel.declare_queue(naming.request_queue(ENDPOINT), passive=True)
            if queue.declaration_result.consumer_count:
                return
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the endpoint did not start; see its log (--keep)")
            await asyncio.sleep(0.2)


def start_celery_worker(url: str, workers: int, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{CELERY_BROKER_ENV: url})
    argv = [sys.executable, "-m", "celery", "-A", "bench.tasks:celery_app", "worker"]
    argv += ["--pool", "prefork", "--concurrency", str(workers), "--loglevel", "WARNING"]
    argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    with log.open("ab") as out:
        return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=out)


def stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# --------------------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------------------


def cpu_seconds(pid: int, *, children: bool = True, own: bool = True) -> float:
    """CPU seconds (user + system) of process ``pid`` and/or its live children."""
    import psutil

    total = 0.0
    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(pid)
        tree = [proc] if own else []
        if children:
            tree += proc.children(recursive=True)
        for p in tree:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
    return total


class Cpu:
    """CPU ms per task of this process (the client), of its children (the private broker
    node, when the bench started one) and of the server side (``pid``'s tree)."""

    def __init__(self, server_pid: int) -> None:
        self.pid = server_pid
        self.samples: list[dict[str, float]] = []

    def _now(self) -> tuple[float, float, float, float]:
        me = os.getpid()
        return (
            cpu_seconds(me, children=False),
            cpu_seconds(me, own=False) - cpu_seconds(self.pid),  # the node, not the server
            cpu_seconds(self.pid),
            cpu_seconds(self.pid, own=False),  # of that: the server's worker processes
        )

    def start(self) -> None:
        self._t0 = self._now()

    def stop(self, n: int) -> None:
        now = self._now()
        keys = (
            "client_ms_per_task",
            "broker_ms_per_task",
            "server_ms_per_task",
            "server_workers_ms_per_task",
        )
        pairs = zip(keys, self._t0, now, strict=True)
        self.samples.append({k: 1000 * (b - a) / n for k, a, b in pairs})

    def median(self) -> dict[str, float]:
        return {k: round(statistics.median(s[k] for s in self.samples), 4) for k in self.samples[0]}


def run_orbit(url: str, n: int, warmup: int, rounds: int, cpu: Cpu) -> list[float]:
    from orbit_plugins.tasks.client import OrbitExecutor

    rates = []
    with OrbitExecutor(ENDPOINT, client_settings={"url": url, "timeout": 120}) as ex:
        list(ex.map(noop, range(warmup), timeout=120))
        for _ in range(rounds):
            cpu.start()
            started = time.perf_counter()
            results = list(ex.map(noop, range(n), timeout=300))
            elapsed = time.perf_counter() - started
            cpu.stop(n)
            if len(results) != n or any(r is not None for r in results):
                raise RuntimeError("orbit: wrong results")
            rates.append(n / elapsed)
            print(f"  orbit  {n} tasks in {elapsed:.2f} s: {n / elapsed:,.0f}/s", file=sys.stderr)
    return rates


def run_celery(url: str, n: int, warmup: int, rounds: int, cpu: Cpu) -> list[float]:
    from celery import group

    app = make_celery(url)
    task = app.tasks["bench.noop"]
    deadline = time.monotonic() + 60
    while True:  # wait for the worker
        with contextlib.suppress(Exception):
            if task.delay(0).get(timeout=5) is None:
                break
        if time.monotonic() > deadline:
            raise RuntimeError("celery worker did not answer")
    group(task.s(i) for i in range(warmup)).apply_async().get(timeout=120)
    rates = []
    for _ in range(rounds):
        cpu.start()
        started = time.perf_counter()
        results = group(task.s(i) for i in range(n)).apply_async().get(timeout=600)
        elapsed = time.perf_counter() - started
        cpu.stop(n)
        if len(results) != n or any(r is not None for r in results):
            raise RuntimeError("celery: wrong results")
        rates.append(n / elapsed)
        print(f"  celery {n} tasks in {elapsed:.2f} s: {n / elapsed:,.0f}/s", file=sys.stderr)
    app.close()
    return rates


def summary(rates: list[float], cpu: Cpu) -> dict[str, Any]:
    return {
        "tasks_per_s": round(statistics.median(rates), 1),
        "rounds": [round(r, 1) for r in rates],
        "cpu": cpu.median(),
    }


def ratios(variants: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    orbit = variants["orbit"]["tasks_per_s"]
    out: dict[str, dict[str, Any]] = {
        "orbit tasks/s": {
            "value": orbit,
            "target": f">= {TARGET_TASKS_PER_S:,.0f}",
            "pass": orbit >= TARGET_TASKS_PER_S,
        },
        "orbit / seed": {"value": round(orbit / SEED_TASKS_PER_S, 3)},
    }
    if "celery" in variants:
        value = orbit / variants["celery"]["tasks_per_s"]
        out["orbit / celery"] = {
            "value": round(value, 3),
            "target": f">= {TARGET_VS_CELERY:g}",
            "pass": value >= TARGET_VS_CELERY,
        }
    return out


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(Exception):
        import celery

        info["celery"] = celery.__version__
    return info


def render(doc: dict[str, Any]) -> None:
    def cpu(v: dict[str, Any]) -> str:
        c = v.get("cpu")
        if not c:
            return "n/a"
        keys = ("client_ms_per_task", "broker_ms_per_task", "server_ms_per_task")
        text = " / ".join(f"{c[k]:.3f}" for k in keys)
        workers = c.get("server_workers_ms_per_task")
        return text if workers is None else f"{text} ({workers:.3f} in workers)"

    rows = [
        (
            name,
            f"{v['tasks_per_s']:,.0f}",
            " ".join(f"{r:,.0f}" for r in v.get("rounds", [])),
            cpu(v),
        )
        for name, v in doc["variants"].items()
    ]
    checks = [
        (
            name,
            f"{r['value']:,.3f}",
            r.get("target", ""),
            "" if "pass" not in r else ("PASS" if r["pass"] else "MISS"),
        )
        for name, r in doc["ratios"].items()
    ]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        for row in rows + checks:
            print(" | ".join(row))
        return
    title = f"No-op function tasks, {doc['config']['tasks']} per round (median of rounds)"
    table = Table(title=title)
    cpu_head = "CPU ms/task client / broker / server (of it in workers)"
    for h in ("variant", "tasks/s", "rounds", cpu_head):
        table.add_column(h, justify="left" if h == "variant" else "right")
    for row in rows:
        table.add_row(*row)
    console = Console()
    console.print(table)
    rt = Table(title="Ratios")
    for h in ("ratio", "value", "target", "result"):
        rt.add_column(h)
    for row in checks:
        rt.add_row(*row)
    console.print(rt)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="AMQP URL incl. vhost (default: start a private node)")
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks per round")
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--variants", default="orbit,celery")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = parser.parse_args()
    wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
    started = time.time()
    info = machine()
    workdir = Path(tempfile.mkdtemp(prefix="orbit-bench-tasks-"))
    node = None
    variants: dict[str, dict[str, Any]] = {}
    try:
        url = args.url
        if url is None:
            node = start_private_node(workdir)
            url = node.amqp_url("/")
        if "orbit" in wanted:
            asyncio.run(declare_endpoint(url))
            ep = start_endpoint(url, args.workers, workdir / "ep", workdir / "endpoint.log")
            try:
                asyncio.run(wait_consumer(url, ep))
                print(f"endpoint pid {ep.pid}, client pid {os.getpid()}", file=sys.stderr)
                cpu = Cpu(ep.pid)
                rates = run_orbit(url, args.tasks, args.warmup, args.rounds, cpu)
                variants["orbit"] = summary(rates, cpu)
            finally:
                stop(ep)
        if "celery" in wanted:
            worker = start_celery_worker(url, args.workers, workdir / "celery.log")
            try:
                cpu = Cpu(worker.pid)
                rates = run_celery(url, args.tasks, args.warmup, args.rounds, cpu)
                variants["celery"] = summary(rates, cpu)
            finally:
                stop(worker)
    finally:
        if node is not None:
            node.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir}", file=sys.stderr)
    variants["seed (published)"] = {"tasks_per_s": SEED_TASKS_PER_S, "source": SEED_SOURCE}
    doc = {
        "benchmark": "orbit tasks",
        "started_at": started,
        "duration_s": round(time.time() - started, 1),
        "config": {
            "tasks": args.tasks,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "workers": args.workers,
            "private_node": args.url is None,
        },
        "machine": info,
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "variants": variants,
        "ratios": ratios(variants) if "orbit" in variants else {},
    }
    render(doc)
    text = json.dumps(doc, indent=2)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n")
        print(f"JSON written to {args.json_out}", file=sys.stderr)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
