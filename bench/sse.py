#!/usr/bin/env python
"""SSE benchmark: events through the gateway vs a raw aio-pika consumer, in one run.

    .venv/bin/python bench/sse.py [--clients 1,100] [--rates 500,50] [--seconds 10]
                                  [--burst 2000] [--json-out FILE]

A private RabbitMQ node (``orbit_broker.local.LocalNode``) is started in a temporary
directory on free ports; a **publisher process** publishes endpoint events to ``orbit.events``
exactly as an endpoint does (``orbit_protocol.Event`` body with ``ts`` = publish time,
``<endpoint>.<plugin>.<topic>`` routing key, ``x-orbit-v`` header, ``<boot>-<seq>`` message
id, publisher confirms); a real gateway subprocess (``python -m orbit_cli gateway``, uvicorn)
serves ``/events``. Receivers run in separate **receiver processes** (up to ``--procs``),
either as SSE clients (httpx async streaming, HTTP Basic login, ``/events?endpoint=bench``)
or as raw aio-pika consumers (one connection and one exclusive queue bound to
``bench.#`` each). Every received event's delay is ``receive time - ts``.

Cases, each for 1 and for 100 receivers (``--clients``), raw and SSE:

  steady   ``--rates`` events/s (one per receiver count) for ``--seconds``: end-to-end
           p50/p99/max delay and the events/s each receiver got.
  burst    ``--burst`` events published as fast as the publisher can: events/s delivered
           (per receiver: events / (last receive - first publish)) and the aggregate.

An SSE client whose per-connection queue overflows is disconnected by the gateway; the
bench client then reconnects with ``Last-Event-ID`` like a browser and the reconnect is
counted. Exit status 0 whatever the numbers. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aio_pika  # noqa: E402
import httpx  # noqa: E402

SCRIPT = Path(__file__).resolve()
ENDPOINT, PLUGIN, TOPIC = "bench", "kit", "tick"
USER = PASSWORD = "guest"  # the private node's loopback admin


# ------------------------------------------------------------------------ publisher


async def publish(url: str, rate: float, count: int, start_at: float) -> None:
    """``count`` events at ``rate``/s (0: as fast as confirms allow), from ``start_at``."""
    from orbit_protocol import Event, naming

    conn = await aio_pika.connect(url)
    async with conn:
        channel = await conn.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(naming.EVENT_EXCHANGE, ensure=False)
        key = naming.event_routing_key(ENDPOINT, PLUGIN, TOPIC)
        boot = os.urandom(4).hex()
        print("READY", flush=True)
        await asyncio.sleep(max(0.0, start_at - time.time()))
        t0 = time.monotonic()
        pending: set[asyncio.Task[Any]] = set()
        for i in range(count):
            if rate:
                delay = t0 + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            body = Event(
                endpoint=ENDPOINT, plugin=PLUGIN, topic=TOPIC, ts=time.time(), data={"i": i}
            )
            message = aio_pika.Message(
                body.to_bytes(),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
                message_id=f"{boot}-{i}",
                type=f"{PLUGIN}.{TOPIC}",
                headers={"x-orbit-v": 1},
            )
            task = asyncio.create_task(exchange.publish(message, key))
            pending.add(task)
            task.add_done_callback(pending.discard)
            if len(pending) >= 256:  # confirms in flight
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if pending:
            await asyncio.gather(*pending)


# ------------------------------------------------------------------------ receivers


class Stats:
    def __init__(self) -> None:
        self.delays: list[float] = []
        self.ids: set[int] = set()
        self.first = self.last = 0.0
        self.reconnects = 0

    def add(self, body: dict[str, Any]) -> None:
        now = time.time()
        self.delays.append(now - body["ts"])
        self.ids.add(body["data"]["i"])
        self.last = now
        self.first = self.first or now


async def sse_client(base: str, expect: int, idle: float, ready: asyncio.Event) -> Stats:
    stats = Stats()
    last_id: str | None = None
    url = f"/events?endpoint={ENDPOINT}&plugin={PLUGIN}"
    limits = httpx.Limits(max_connections=1)
    async with httpx.AsyncClient(
        base_url=base, auth=(USER, PASSWORD), timeout=None, limits=limits
    ) as http:
        while len(stats.ids) < expect:
            headers = {"Last-Event-ID": last_id} if last_id else {}
            try:
                async with http.stream("GET", url, headers=headers) as response:
                    event, data = "", ""
                    lines = response.aiter_lines()
                    while True:
                        line = await asyncio.wait_for(anext(lines), idle)
                        if line.startswith("event:"):
                            event = line[6:].strip()
                        elif line.startswith("id:"):
                            last_id = line[3:].strip()
                        elif line.startswith("data:"):
                            data = line[5:].strip()
                        elif not line and data:
                            if event == "hello":
                                ready.set()
                            elif event == "notification":
                                stats.add(json.loads(data))
                                if len(stats.ids) >= expect:
                                    return stats
                            event, data = "", ""
            except (StopAsyncIteration, httpx.TransportError):
                stats.reconnects += 1  # the gateway ended an overflowed stream
            except TimeoutError:
                return stats  # idle: the rest is lost
    return stats


async def raw_client(url: str, expect: int, idle: float, ready: asyncio.Event) -> Stats:
    from orbit_protocol import naming

    stats = Stats()
    done = asyncio.Event()
    conn = await aio_pika.connect(url)
    async with conn:
        channel = await conn.channel()
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(naming.EVENT_EXCHANGE, f"{ENDPOINT}.#")

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            stats.add(json.loads(message.body))
            if len(stats.ids) >= expect:
                done.set()

        await queue.consume(on_message, no_ack=True)
        ready.set()
        while not done.is_set():
            seen = len(stats.ids)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), idle)
            if len(stats.ids) == seen:
                break
    return stats


async def receive(args: argparse.Namespace) -> list[dict[str, Any]]:
    readies = [asyncio.Event() for _ in range(args.clients)]
    if args.transport == "sse":
        coros = [sse_client(args.base, args.expect, args.idle, r) for r in readies]
    else:
        coros = [raw_client(args.url, args.expect, args.idle, r) for r in readies]
    tasks = [asyncio.create_task(c) for c in coros]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
    print("READY", flush=True)
    results = await asyncio.gather(*tasks)
    return [
        {
            "delays": [round(d, 5) for d in s.delays],
            "unique": len(s.ids),
            "first": s.first,
            "last": s.last,
            "reconnects": s.reconnects,
        }
        for s in results
    ]


# ------------------------------------------------------------------------ orchestration


class Child:
    """A child process that prints READY when set up."""

    def __init__(self, argv: list[str], log_path: Path) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.log = log_path.open("ab")
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )

    async def ready(self, timeout: float = 150) -> None:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout)
        if line.strip() != b"READY":
            raise RuntimeError(f"child {self.proc.args!r} failed; see {self.log.name}")

    async def wait(self, timeout: float) -> int:
        return await asyncio.wait_for(asyncio.to_thread(self.proc.wait), timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def run_case(
    ctx: dict[str, Any], transport: str, clients: int, rate: float, count: int
) -> dict[str, Any]:
    work: Path = ctx["workdir"]
    procs = min(clients, ctx["procs"])
    split = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    idle = 15.0
    receivers, outs = [], []
    for i, n in enumerate(split):
        out = work / f"recv-{transport}-{clients}-{rate}-{i}.json"
        outs.append(out)
        argv = [
            sys.executable,
            str(SCRIPT),
            "_receive",
            "--transport",
            transport,
            "--clients",
            str(n),
            "--expect",
            str(count),
            "--idle",
            str(idle),
            "--url",
            ctx["url"],
            "--base",
            ctx["base"],
            "--out",
            str(out),
        ]
        receivers.append(Child(argv, work / "receivers.log"))
    try:
        await asyncio.gather(*(r.ready() for r in receivers))
        start_at = time.time() + 0.5
        pub = Child(
            [
                sys.executable,
                str(SCRIPT),
                "_publish",
                "--url",
                ctx["url"],
                "--rate",
                str(rate),
                "--count",
                str(count),
                "--start-at",
                str(start_at),
            ],
            work / "publisher.log",
        )
        try:
            await pub.ready()
            await pub.wait(600)
        finally:
            pub.stop()
        published = time.time()
        for r in receivers:
            await r.wait(600)
    finally:
        for r in receivers:
            r.stop()
    per_client = [c for out in outs for c in json.loads(out.read_text())]
    delays = [d for c in per_client for d in c["delays"]]
    got = [c["unique"] for c in per_client]
    spans = [max(c["last"] - start_at, 1e-9) for c in per_client if c["unique"]]
    rates = [
        c["unique"] / s for c, s in zip((c for c in per_client if c["unique"]), spans, strict=True)
    ]
    return {
        "transport": transport,
        "clients": clients,
        "offered_rate": rate or None,
        "events": count,
        "publish_s": round(published - start_at, 3),
        "received_min": min(got),
        "received_total": sum(got),
        "lost_total": count * clients - sum(got),
        "reconnects": sum(c["reconnects"] for c in per_client),
        "per_client_events_s": round(sorted(rates)[len(rates) // 2], 1) if rates else 0.0,
        "aggregate_events_s": round(sum(rates), 1),
        "delay_ms": {
            "p50": round(1000 * pct(delays, 0.50), 2),
            "p99": round(1000 * pct(delays, 0.99), 2),
            "max": round(1000 * max(delays), 2) if delays else None,
        },
    }


def start_gateway(
    url: str, port: int, args: argparse.Namespace, log_path: Path
) -> subprocess.Popen[bytes]:
    """``orbit gateway`` (uvicorn) as a subprocess."""
    argv = [sys.executable, "-m", "orbit_cli", "gateway", "--url", url, "--port", str(port)]
    argv += ["--history", str(args.history), "--client-queue", str(args.client_queue)]
    with log_path.open("ab") as log:
        return subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=log)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from orbit_broker.local import LocalNode, free_port
    from orbit_broker.topology import declare_all

    workdir = Path(tempfile.mkdtemp(prefix="orbit-bench-sse-"))
    print(f"work dir {workdir}", file=sys.stderr)
    node = LocalNode(
        data_dir=workdir / "broker",
        name=f"orbit-bench-sse-{os.getpid()}",
        amqp_port=free_port(),
        management_port=free_port(),
        dist_port=free_port(),
        epmd_port=free_port(),
    )
    gateway: subprocess.Popen[bytes] | None = None
    results: list[dict[str, Any]] = []
    try:
        print("starting a private RabbitMQ node ...", file=sys.stderr)
        node.start(wait=True, timeout=120)
        url = node.amqp_url("/")
        await declare_all(url)
        conn = await aio_pika.connect(url)
        async with conn:
            server = dict(conn.transport.connection.server_properties) if conn.transport else {}
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        gateway = start_gateway(url, port, args, workdir / "gateway.log")
        async with httpx.AsyncClient(base_url=base) as http:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/asyncapi.json")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        ctx = {"workdir": workdir, "url": url, "base": base, "procs": args.procs}
        for clients, steady in zip(args.clients, args.rates, strict=True):
            count = int(steady * args.seconds)
            for transport in ("raw", "sse"):
                for mode, rate, n in (("steady", steady, count), ("burst", 0.0, args.burst)):
                    print(f"  {mode:6} {transport:3} x{clients} ...", file=sys.stderr)
                    case = await run_case(ctx, transport, clients, rate, n)
                    case["mode"] = mode
                    results.append(case)
                    print(f"    {case}", file=sys.stderr)
    finally:
        if gateway is not None and gateway.poll() is None:
            gateway.terminate()
            gateway.wait(10)
        node.stop()
    return {
        "cases": results,
        "server": {k: str(v) for k, v in server.items() if k in ("version", "product")},
    }


def render(doc: dict[str, Any]) -> None:
    head = (
        f"{'mode':7}{'via':5}{'clients':>8}{'offered/s':>10}{'events':>8}{'lost':>7}"
        f"{'reconn':>7}{'ev/s each':>10}{'ev/s total':>11}{'p50 ms':>9}{'p99 ms':>9}"
    )
    print(head)
    print("-" * len(head))
    for c in doc["cases"]:
        offered = f"{c['offered_rate']:.0f}" if c["offered_rate"] else "max"
        print(
            f"{c['mode']:7}{c['transport']:5}{c['clients']:>8}{offered:>10}{c['events']:>8}"
            f"{c['lost_total']:>7}{c['reconnects']:>7}{c['per_client_events_s']:>10}"
            f"{c['aggregate_events_s']:>11}{c['delay_ms']['p50']:>9}{c['delay_ms']['p99']:>9}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rates", default="500,50", help="steady events/s, one per --clients entry"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="steady duration")
    parser.add_argument("--burst", type=int, default=2000, help="events in the burst case")
    parser.add_argument("--clients", default="1,100", help="receiver counts")
    parser.add_argument("--procs", type=int, default=4, help="receiver processes")
    parser.add_argument("--history", type=int, default=10000, help="gateway --history")
    parser.add_argument("--client-queue", type=int, default=1000, help="gateway --client-queue")
    parser.add_argument("--json-out", type=Path)
    sub = parser.add_subparsers(dest="role")
    pub = sub.add_parser("_publish")
    pub.add_argument("--url", required=True)
    pub.add_argument("--rate", type=float, required=True)
    pub.add_argument("--count", type=int, required=True)
    pub.add_argument("--start-at", type=float, required=True)
    rec = sub.add_parser("_receive")
    for name in ("--transport", "--url", "--base", "--out"):
        rec.add_argument(name, required=True)
    rec.add_argument("--clients", type=int, required=True)
    rec.add_argument("--expect", type=int, required=True)
    rec.add_argument("--idle", type=float, required=True)
    args = parser.parse_args()
    if args.role == "_publish":
        asyncio.run(publish(args.url, args.rate, args.count, args.start_at))
        return 0
    if args.role == "_receive":
        Path(args.out).write_text(json.dumps(asyncio.run(receive(args))))
        return 0
    args.clients = [int(c) for c in args.clients.split(",")]
    args.rates = [float(r) for r in args.rates.split(",")]
    if len(args.rates) != len(args.clients):
        parser.error("--rates needs one rate per --clients entry")
    started = time.time()
    result = asyncio.run(run(args))
    doc = {
        "benchmark": "orbit sse",
        "started_at": started,
        "duration_s": round(time.time() - started, 1),
        "config": {
            "rates": args.rates,
            "seconds": args.seconds,
            "burst": args.burst,
            "clients": args.clients,
            "receiver_procs": args.procs,
            "gateway_history": args.history,
            "gateway_client_queue": args.client_queue,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        **result,
    }
    render(doc)
    text = json.dumps(doc, indent=2)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n")
        print(f"JSON written to {args.json_out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
