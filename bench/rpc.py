#!/usr/bin/env python
"""RPC benchmark: Orbit vs raw aio-pika request/reply on the same broker, in one run.

    .venv/bin/python bench/rpc.py [--url URL] [--requests N] [--rounds R] [--json-out FILE]

Without ``--url`` a private RabbitMQ node (``orbit_broker.local.LocalNode``) is started in a
temporary directory on free ports and stopped at the end. Every responder runs in its own
process; the requesters run in this process. Variants:

  raw_durable    (a) baseline: Orbit's durable topology driven by raw aio-pika. Quorum request
                 queue with ``work_queue_arguments()``, bound to ``orbit.requests``; persistent
                 requests published with confirms and ``mandatory``; the responder (prefetch 32,
                 like the endpoint) acks after decoding and replies through ``orbit.replies`` to
                 a durable reply queue, publishing with confirms on a second connection.
  raw_transient  (b) floor: classic non-durable queue, default exchange, no confirms, transient
                 messages, auto-ack, exclusive reply queue.
  orbit_async    (c) ``AsyncOrbitClient.call(ep, "orbit.ping")`` → ``python -m orbit_endpoint``.
  orbit_sync     (d) ``OrbitClient.call`` → the same endpoint; W in flight = W caller threads.

For each: sequential latency (after warm-up) and throughput at 1/16/64 requests in flight
(fixed request count per level, capped in time), CPU ms per request by process, and the
ratios to the baseline and the floor. Exit status is 0 whatever the numbers: this is a
measurement. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aio_pika  # noqa: E402
import aiormq.exceptions  # noqa: E402
import psutil  # noqa: E402

from orbit_protocol import naming  # noqa: E402
from orbit_protocol import topology as topo  # noqa: E402

SCRIPT = Path(__file__).resolve()
LEVELS = (1, 16, 64)
PREFETCH = 32  # the endpoint's default prefetch (EndpointSettings.prefetch)
VARIANTS = ("raw_durable", "raw_transient", "orbit_async", "orbit_sync")
LABELS = {
    "raw_durable": "(a) raw durable [baseline]",
    "raw_transient": "(b) raw transient [floor]",
    "orbit_async": "(c) orbit async client",
    "orbit_sync": "(d) orbit sync client",
}
TARGET_P50 = 1.3
TARGET_RPS64 = 0.7


# --------------------------------------------------------------------------------------
# responder process (variants a and b)
# --------------------------------------------------------------------------------------

REPLY_HEADERS: dict[str, aio_pika.abc.FieldValue] = {"x-orbit-v": 1}


async def _responder(url: str, mode: str, queue_name: str) -> None:
    durable = mode == "durable"
    consume_conn = await aio_pika.connect(url)
    channel = await consume_conn.channel()
    await channel.set_qos(prefetch_count=PREFETCH)
    queue = await channel.declare_queue(queue_name, passive=True)
    if durable:
        publish_conn = await aio_pika.connect(url)  # separate connection, as the endpoint
        pub_channel = await publish_conn.channel(publisher_confirms=True)
        exchange = await pub_channel.get_exchange(naming.REPLY_EXCHANGE, ensure=False)
    else:
        pub_channel = await consume_conn.channel(publisher_confirms=False)
        exchange = pub_channel.default_exchange

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        request = json.loads(message.body)
        body = json.dumps(
            {"v": 1, "ok": True, "result": {"pong": True, "n": len(request), "time": time.time()}},
            separators=(",", ":"),
        ).encode()
        if durable:
            await message.ack()  # accepted: from here on the responder owns the request
            reply = aio_pika.Message(
                body,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                correlation_id=message.correlation_id,
                message_id=uuid.uuid4().hex,
                type="reply",
                headers=REPLY_HEADERS,
            )
            await exchange.publish(reply, message.reply_to or "", timeout=15)  # awaits confirm
        else:
            reply = aio_pika.Message(body, correlation_id=message.correlation_id)
            await exchange.publish(reply, message.reply_to or "")

    await queue.consume(on_message, no_ack=not durable)
    print("READY", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await consume_conn.close()
    if durable:
        await publish_conn.close()


# --------------------------------------------------------------------------------------
# requesters (this process)
# --------------------------------------------------------------------------------------


class RawRequester:
    """Request/reply with raw aio-pika, shaped like the Orbit client (a) or minimal (b)."""

    def __init__(self, url: str, mode: str, target: str) -> None:
        self.url, self.mode, self.target = url, mode, target
        self.durable = mode == "durable"
        self.pending: dict[str, asyncio.Future[bytes]] = {}
        self.reply_queue_name = ""

    async def start(self) -> RawRequester:
        self.conn = await aio_pika.connect(self.url)
        publish = await self.conn.channel(publisher_confirms=self.durable)
        replies = await self.conn.channel()
        if self.durable:
            self.exchange = await publish.get_exchange(naming.REQUEST_EXCHANGE, ensure=False)
            self.reply_queue_name = naming.reply_queue("bench")
            queue = await replies.declare_queue(
                self.reply_queue_name, durable=True, arguments=topo.client_queue_arguments()
            )
            await queue.bind(naming.REPLY_EXCHANGE, self.reply_queue_name)
        else:
            self.exchange = publish.default_exchange
            queue = await replies.declare_queue("", exclusive=True, auto_delete=True)
            self.reply_queue_name = queue.name
        self._reply_channel = replies
        await queue.consume(self._on_reply, no_ack=True)
        self.user = self.conn.url.user or "guest"
        return self

    async def _on_reply(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        future = self.pending.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(message.body)

    async def call(self) -> bytes:
        corr = uuid.uuid4().hex
        body = json.dumps(
            {"v": 1, "plugin": "orbit", "method": "ping", "args": {}}, separators=(",", ":")
        ).encode()
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.pending[corr] = future
        if self.durable:
            message = aio_pika.Message(
                body,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                correlation_id=corr,
                message_id=corr,
                reply_to=self.reply_queue_name,
                user_id=self.user,
                type="orbit.ping",
                headers={"x-orbit-v": 1},
            )
            await self.exchange.publish(message, self.target, mandatory=True, timeout=30)
        else:
            message = aio_pika.Message(body, correlation_id=corr, reply_to=self.reply_queue_name)
            await self.exchange.publish(message, self.target)
        return await asyncio.wait_for(future, 30)

    async def close(self) -> str | None:
        """Close; return the durable reply queue's name for the caller to delete."""
        await self.conn.close()
        return self.reply_queue_name if self.durable else None


# --------------------------------------------------------------------------------------
# measurement
# --------------------------------------------------------------------------------------


def _pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    idx = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[idx]


def _lat_stats(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {
        "n": len(s),
        "p50_ms": _pct(s, 0.50) * 1e3,
        "p99_ms": _pct(s, 0.99) * 1e3,
        "mean_ms": (statistics.fmean(s) * 1e3) if s else float("nan"),
    }


class CpuMeter:
    """CPU seconds (user+system) of a set of processes between two snapshots."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.procs = {k: psutil.Process(p) for k, p in pids.items() if p}

    def snap(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, proc in self.procs.items():
            try:
                times = proc.cpu_times()
                out[key] = times.user + times.system  # this process only, not children
            except psutil.Error:
                out[key] = float("nan")
        return out

    @staticmethod
    def per_request(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float]:
        return {k: round((after[k] - before[k]) * 1e3 / max(n, 1), 3) for k in before}


async def measure_async(
    call: Callable[[], Awaitable[Any]],
    *,
    warmup: int,
    seq: int,
    requests: int,
    cap: float,
    cpu: CpuMeter,
) -> dict[str, Any]:
    for _ in range(warmup):
        await call()
    samples: list[float] = []
    deadline = time.perf_counter() + cap
    for _ in range(seq):
        t0 = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - t0)
        if t0 > deadline:
            break
    result: dict[str, Any] = {"sequential": _lat_stats(samples), "levels": {}}
    for w in LEVELS:
        issued = 0
        lat: list[float] = []
        stop_at = time.perf_counter() + cap

        async def worker(lat: list[float] = lat, stop_at: float = stop_at) -> None:
            nonlocal issued
            while issued < requests and time.perf_counter() < stop_at:
                issued += 1
                t0 = time.perf_counter()
                await call()
                lat.append(time.perf_counter() - t0)

        before = cpu.snap()
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(w)))
        elapsed = time.perf_counter() - t0
        after = cpu.snap()
        stats = _lat_stats(lat)
        result["levels"][str(w)] = {
            "completed": len(lat),
            "elapsed_s": round(elapsed, 3),
            "rps": len(lat) / elapsed,
            "capped": len(lat) < requests,
            "p50_ms": stats["p50_ms"],
            "p99_ms": stats["p99_ms"],
            "cpu_ms_per_req": CpuMeter.per_request(before, after, len(lat)),
        }
    return result


def measure_sync(
    call: Callable[[], Any], *, warmup: int, seq: int, requests: int, cap: float, cpu: CpuMeter
) -> dict[str, Any]:
    for _ in range(warmup):
        call()
    samples: list[float] = []
    deadline = time.perf_counter() + cap
    for _ in range(seq):
        t0 = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t0)
        if t0 > deadline:
            break
    result: dict[str, Any] = {"sequential": _lat_stats(samples), "levels": {}}
    for w in LEVELS:
        lock = threading.Lock()
        issued = 0
        lat: list[float] = []
        stop_at = time.perf_counter() + cap

        def worker(
            lat: list[float] = lat, lock: threading.Lock = lock, stop_at: float = stop_at
        ) -> None:
            nonlocal issued
            while True:
                with lock:
                    if issued >= requests or time.perf_counter() >= stop_at:
                        return
                    issued += 1
                t0 = time.perf_counter()
                call()
                lat.append(time.perf_counter() - t0)  # list.append is atomic

        before = cpu.snap()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=w) as pool:
            for f in [pool.submit(worker) for _ in range(w)]:
                f.result()
        elapsed = time.perf_counter() - t0
        after = cpu.snap()
        stats = _lat_stats(lat)
        result["levels"][str(w)] = {
            "completed": len(lat),
            "elapsed_s": round(elapsed, 3),
            "rps": len(lat) / elapsed,
            "capped": len(lat) < requests,
            "p50_ms": stats["p50_ms"],
            "p99_ms": stats["p99_ms"],
            "cpu_ms_per_req": CpuMeter.per_request(before, after, len(lat)),
        }
    return result


# --------------------------------------------------------------------------------------
# processes: broker, responders, endpoint
# --------------------------------------------------------------------------------------


def start_private_node(workdir: Path) -> Any:
    from orbit_broker.local import LocalNode, free_port

    node = LocalNode(
        data_dir=workdir / "broker",
        name=f"orbit-bench-{os.getpid()}",
        amqp_port=free_port(),
        management_port=free_port(),
        dist_port=free_port(),
        epmd_port=free_port(),
    )
    node.start(wait=True, timeout=90)
    return node


class Child:
    """A child process whose stdout we read until it says READY (responders) or not at all."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.log = log_path.open("ab")
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.strip() == b"READY":
                return
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError(f"child {self.proc.args!r} not ready; log {self.log_path}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def start_endpoint(url: str, name: str, state_dir: Path, log_path: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        ORBIT_ENDPOINT_NAME=name,
        ORBIT_ENDPOINT_URL=url,
        ORBIT_ENDPOINT_PLUGINS="[]",
        ORBIT_ENDPOINT_STATE_DIR=str(state_dir),
        PYTHONPATH=str(ROOT),
    )
    # e.g. ORBIT_BENCH_ENDPOINT_PYARGS="-m cProfile -o /tmp/endpoint.prof"
    argv = [sys.executable, *os.environ.get("ORBIT_BENCH_ENDPOINT_PYARGS", "").split()]
    argv += ["-m", "orbit_endpoint"]
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )


def start_profilers(directory: Path | None, pids: dict[str, int]) -> list[subprocess.Popen[bytes]]:
    """``py-spy record`` (collapsed stacks, 250 Hz) attached to each pid, until stopped."""
    if directory is None:
        return []
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    directory.mkdir(parents=True, exist_ok=True)
    procs = []
    for name, pid in pids.items():
        out = directory / f"{name}.txt"
        procs.append(
            subprocess.Popen(
                [
                    spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    "250",
                    "--format",
                    "raw",
                    "--nonblocking",
                    "-o",
                    str(out),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=(directory / f"{name}.log").open("ab"),
            )
        )
    time.sleep(1.0)
    return procs


def stop_profilers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


async def consumer_count(url: str, queue: str) -> int:
    conn = await aio_pika.connect(url)
    async with conn:
        channel = await conn.channel()
        try:
            q = await channel.declare_queue(queue, passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            return -1
        return q.declaration_result.consumer_count or 0


# --------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------


def _median_results(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-number median over rounds (same structure as one round)."""
    if len(rounds) == 1:
        return rounds[0]

    def merge(values: list[Any]) -> Any:
        first = values[0]
        if isinstance(first, dict):
            return {k: merge([v[k] for v in values]) for k in first}
        if isinstance(first, bool):
            return any(values)
        if isinstance(first, (int, float)):
            return statistics.median(values)
        return first

    merged: dict[str, Any] = merge(rounds)
    return merged


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="orbit-bench-"))
    node = None
    children: list[Child] = []
    endpoint_proc: subprocess.Popen[bytes] | None = None
    tag = uuid.uuid4().hex[:6]
    raw_ep = f"bench-raw-{tag}"
    orbit_ep = f"bench-{tag}"
    transient_q = f"bench.transient.{tag}"
    declared_queues: list[str] = []
    url = args.url
    broker_pid = None
    profilers: list[subprocess.Popen[bytes]] = []
    try:
        if url is None:
            t = time.monotonic()
            print("starting a private RabbitMQ node ...", file=sys.stderr)
            node = start_private_node(workdir)
            url = node.amqp_url("/")
            broker_pid = node.pid
            print(f"  ready in {time.monotonic() - t:.1f} s: {url}", file=sys.stderr)

        # topology: orbit core + the raw baseline's queue + the orbit endpoint's queue
        from orbit_broker.topology import declare_all

        conn = await aio_pika.connect(url)
        assert conn.transport is not None
        server_props = dict(conn.transport.connection.server_properties)
        channel = await conn.channel()
        await declare_all(url, endpoints=[raw_ep, orbit_ep])
        declared_queues += [naming.request_queue(raw_ep), naming.request_queue(orbit_ep)]
        await channel.declare_queue(transient_q, durable=False, auto_delete=False)
        declared_queues.append(transient_q)

        # responders (separate processes)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        me = [sys.executable, str(SCRIPT), "_responder", "--url", url]
        durable_resp = Child(
            [*me, "--mode", "durable", "--queue", naming.request_queue(raw_ep)],
            env,
            workdir / "responder-durable.log",
        )
        transient_resp = Child(
            [*me, "--mode", "transient", "--queue", transient_q],
            env,
            workdir / "responder-transient.log",
        )
        children += [durable_resp, transient_resp]
        durable_resp.wait_ready()
        transient_resp.wait_ready()

        # orbit clients connect first so that they see the endpoint's "online" presence
        from orbit_client import AsyncOrbitClient, OrbitClient

        aclient = await AsyncOrbitClient(url=url, timeout=30).connect()
        sclient = await asyncio.to_thread(lambda: OrbitClient(url=url, timeout=30).connect())
        endpoint_proc = start_endpoint(url, orbit_ep, workdir / "state", workdir / "endpoint.log")
        deadline = time.monotonic() + 60
        while await consumer_count(url, naming.request_queue(orbit_ep)) < 1:
            if endpoint_proc.poll() is not None or time.monotonic() > deadline:
                log = (workdir / "endpoint.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"endpoint did not start:\n{log}")
            await asyncio.sleep(0.2)
        deadline = time.monotonic() + 15
        while not (aclient.presence.online(orbit_ep) and sclient.endpoints().get(orbit_ep)):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        presence_seen = aclient.presence.online(orbit_ep)

        raw_a = await RawRequester(url, "durable", raw_ep).start()
        raw_b = await RawRequester(url, "transient", transient_q).start()
        me_pid = os.getpid()
        meters = {
            "raw_durable": CpuMeter(
                {"requester": me_pid, "responder": durable_resp.pid, "broker": broker_pid}
            ),
            "raw_transient": CpuMeter(
                {"requester": me_pid, "responder": transient_resp.pid, "broker": broker_pid}
            ),
            "orbit_async": CpuMeter(
                {"requester": me_pid, "responder": endpoint_proc.pid, "broker": broker_pid}
            ),
            "orbit_sync": CpuMeter(
                {"requester": me_pid, "responder": endpoint_proc.pid, "broker": broker_pid}
            ),
        }
        kw = {
            "warmup": args.warmup,
            "seq": args.seq,
            "requests": args.requests,
            "cap": args.cap,
        }

        async def orbit_ping() -> Any:
            return await aclient.call(orbit_ep, "orbit.ping")

        def orbit_ping_sync() -> Any:
            return sclient.call(orbit_ep, "orbit.ping")

        selected = [v for v in VARIANTS if v in args.variants]
        profilers = start_profilers(
            args.profile_dir,
            {"client": me_pid, "endpoint": endpoint_proc.pid, "responder": durable_resp.pid},
        )
        rounds: dict[str, list[dict[str, Any]]] = {v: [] for v in selected}
        t_start = time.monotonic()
        for r in range(args.rounds):
            for variant in selected:
                t = time.monotonic()
                cpu = meters[variant]
                if variant == "raw_durable":
                    res = await measure_async(raw_a.call, cpu=cpu, **kw)
                elif variant == "raw_transient":
                    res = await measure_async(raw_b.call, cpu=cpu, **kw)
                elif variant == "orbit_async":
                    res = await measure_async(orbit_ping, cpu=cpu, **kw)
                else:
                    res = await asyncio.to_thread(measure_sync, orbit_ping_sync, cpu=cpu, **kw)
                rounds[variant].append(res)
                print(
                    f"  round {r + 1}/{args.rounds} {variant:<14} "
                    f"p50 {res['sequential']['p50_ms']:.3f} ms  "
                    + "  ".join(f"W={w} {res['levels'][str(w)]['rps']:.0f}/s" for w in LEVELS)
                    + f"  ({time.monotonic() - t:.1f} s)",
                    file=sys.stderr,
                )
        measured_s = time.monotonic() - t_start

        stop_profilers(profilers)
        reply_queues = [await raw_a.close(), await raw_b.close()]
        reply_queues += [aclient.reply_queue, sclient._async.reply_queue]
        await aclient.close()
        await asyncio.to_thread(sclient.close)
        with contextlib.suppress(Exception):
            for q in reply_queues:
                if q:
                    await channel.queue_delete(q)
        await conn.close()

        return {
            "variants": {v: _median_results(rs) for v, rs in rounds.items()},
            "rounds": rounds,
            "server": {
                "product": str(server_props.get("product", "")),
                "rabbitmq_version": str(server_props.get("version", "")),
                "erlang": str(server_props.get("platform", "")),
                "private_node": node is not None,
            },
            "presence_seen_before_measuring": presence_seen,
            "measured_seconds": round(measured_s, 1),
            "workdir": str(workdir),
        }
    finally:
        stop_profilers(profilers)
        if endpoint_proc is not None and endpoint_proc.poll() is None:
            endpoint_proc.send_signal(signal.SIGTERM)
            try:
                endpoint_proc.wait(20)
            except subprocess.TimeoutExpired:
                endpoint_proc.kill()
        for child in children:
            child.stop()
        if node is None and url is not None and declared_queues:
            with contextlib.suppress(Exception):
                cleanup = await aio_pika.connect(url)
                async with cleanup:
                    ch = await cleanup.channel()
                    for q in declared_queues:
                        await ch.queue_delete(q)
        if node is not None:
            node.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def ratios(variants: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def p50(v: str) -> float:
        return float(variants[v]["sequential"]["p50_ms"])

    def rps64(v: str) -> float:
        return float(variants[v]["levels"]["64"]["rps"])

    for ref, ref_name in (("raw_durable", "baseline"), ("raw_transient", "floor")):
        if ref not in variants:
            continue
        for v, name in (("orbit_async", "orbit"), ("orbit_sync", "orbit_sync")):
            if v not in variants:
                continue
            p = p50(v) / p50(ref)
            t = rps64(v) / rps64(ref)
            entry_p: dict[str, Any] = {"value": round(p, 3)}
            entry_t: dict[str, Any] = {"value": round(t, 3)}
            if ref == "raw_durable":
                entry_p |= {"target": f"<= {TARGET_P50}", "pass": p <= TARGET_P50}
                entry_t |= {"target": f">= {TARGET_RPS64}", "pass": t >= TARGET_RPS64}
            out[f"{name}_p50 / {ref_name}_p50"] = entry_p
            out[f"{name}_rps@64 / {ref_name}_rps@64"] = entry_t
    if "raw_durable" in variants and "raw_transient" in variants:
        base_floor = p50("raw_durable") / p50("raw_transient")
        out["baseline_p50 / floor_p50"] = {"value": round(base_floor, 3)}
        out["baseline_rps@64 / floor_rps@64"] = {
            "value": round(rps64("raw_durable") / rps64("raw_transient"), 3)
        }
    return out


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpu_model": "",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "aio_pika": aio_pika.__version__,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(Exception):
        import pydantic

        info["pydantic"] = pydantic.VERSION
    return info


def render(doc: dict[str, Any]) -> None:
    variants = doc["variants"]
    header = ["variant", "p50 ms", "p99 ms", "mean ms"] + [f"req/s W={w}" for w in LEVELS]
    header += ["p50 ms W=64", "CPU ms/req W=64 req/resp/broker"]
    rows = []
    for v, res in variants.items():
        s = res["sequential"]
        lv = res["levels"]
        cpu = lv["64"]["cpu_ms_per_req"]
        rows.append(
            [
                LABELS[v],
                f"{s['p50_ms']:.3f}",
                f"{s['p99_ms']:.3f}",
                f"{s['mean_ms']:.3f}",
                *(f"{lv[str(w)]['rps']:.0f}{'*' if lv[str(w)]['capped'] else ''}" for w in LEVELS),
                f"{lv['64']['p50_ms']:.2f}",
                "/".join(
                    f"{cpu.get(k, float('nan')):.2f}"
                    for k in ("requester", "responder", "broker")
                    if k in cpu
                ),
            ]
        )
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"RPC benchmark (median of {doc['config']['rounds']} round(s))")
        for h in header:
            table.add_column(h, justify="left" if h == "variant" else "right")
        for row in rows:
            table.add_row(*row)
        console = Console(width=max(Console().width, 150))
        console.print(table)
        rt = Table(title="Ratios")
        for h in ("ratio", "value", "target", "result"):
            rt.add_column(h)
        for name, r in doc["ratios"].items():
            verdict = "" if "pass" not in r else ("PASS" if r["pass"] else "MISS")
            rt.add_row(name, f"{r['value']:.3f}", r.get("target", ""), verdict)
        console.print(rt)
    except ImportError:
        print(" | ".join(header))
        for row in rows:
            print(" | ".join(row))
        for name, r in doc["ratios"].items():
            verdict = "" if "pass" not in r else ("PASS" if r["pass"] else "MISS")
            print(f"{name}: {r['value']:.3f} {r.get('target', '')} {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="AMQP URL incl. vhost (default: start a private node)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per W level")
    parser.add_argument("--seq", type=int, default=1000, help="sequential latency samples")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument("--cap", type=float, default=15.0, help="time cap per level, s")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, journal)")
    parser.add_argument(
        "--profile-dir",
        type=Path,
        help="attach py-spy (pip install py-spy) to client, endpoint and durable responder;"
        " collapsed stacks are written there (use with --variants orbit_async)",
    )
    sub = parser.add_subparsers(dest="role")
    resp = sub.add_parser("_responder")
    resp.add_argument("--url", required=True)
    resp.add_argument("--mode", choices=("durable", "transient"), required=True)
    resp.add_argument("--queue", required=True)
    args = parser.parse_args()
    if args.role == "_responder":
        asyncio.run(_responder(args.url, args.mode, args.queue))
        return 0
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    started = time.time()
    info = machine()
    result = asyncio.run(run(args))
    info["rabbitmq_version"] = result["server"]["rabbitmq_version"]
    info["erlang"] = result["server"]["erlang"]
    doc = {
        "benchmark": "orbit rpc",
        "started_at": started,
        "duration_s": round(time.time() - started, 1),
        "config": {
            "requests_per_level": args.requests,
            "sequential_samples": args.seq,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "cap_s": args.cap,
            "levels": list(LEVELS),
            "endpoint_prefetch": PREFETCH,
            "private_node": result["server"]["private_node"],
            "url": None if args.url is None else _safe(args.url),
        },
        "machine": info,
        "presence_seen_before_measuring": result["presence_seen_before_measuring"],
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "variants": result["variants"],
        "ratios": ratios(result["variants"]),
        # paired per round (same broker state, minutes apart): shows the run-to-run noise
        "ratios_per_round": [
            {
                k: r["value"]
                for k, r in ratios({v: rs[i] for v, rs in result["rounds"].items()}).items()
            }
            for i in range(args.rounds)
        ],
        "rounds": result["rounds"],
    }
    render(doc)
    text = json.dumps(doc, indent=2, default=str)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n")
        print(f"JSON written to {args.json_out}", file=sys.stderr)
    else:
        print(text)
    return 0


def _safe(url: str) -> str:
    from urllib.parse import urlsplit

    p = urlsplit(url)
    user = f"{p.username}:***@" if p.username else ""
    port = f":{p.port}" if p.port else ""
    return f"{p.scheme}://{user}{p.hostname}{port}{p.path}"


if __name__ == "__main__":
    sys.exit(main())
