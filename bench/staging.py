#!/usr/bin/env python
"""Staging benchmark: a 200 MiB put and get through Orbit vs raw AMQP on the same broker.

    .venv/bin/python bench/staging.py [--url URL] [--size-mib 200] [--parallel 8]
                                      [--rounds 3] [--json-out FILE] [--keep]

Without ``--url`` a private RabbitMQ node (``orbit_broker.local.LocalNode``) is started in a
temporary directory and stopped at the end. In one run, alternating per round:

  raw_echo   the ceiling: raw aio-pika, Orbit's durable topology (quorum request queue with
             ``work_queue_arguments()``, persistent messages, confirms, ``mandatory``, a durable
             reply queue behind ``orbit.replies``, replies confirmed on a second connection). A
             responder process echoes each 1 MiB binary body back; ``parallel`` in flight.
  raw_up     the same, 1 MiB up and a small reply (the shape of an upload chunk).
  raw_down   the same, a small request and a 1 MiB reply (the shape of a download chunk).
  orbit_put  ``orbit_plugins.staging.client.upload`` of a 200 MiB file to an endpoint subprocess
             (``python -m orbit_endpoint``, plugin ``staging``): hash, put_begin, chunks
             (1 MiB, base64 in JSON, ``parallel`` in flight), put_commit (SHA-256 check, fsync,
             atomic placement). Timed end to end.
  orbit_get  ``orbit_plugins.staging.client.download`` of that file: stat with checksum, chunks,
             client-side SHA-256 check, rename. Timed end to end.

How MiB/s is counted: payload MiB delivered in one direction per wall-clock second. An echo
carries its MiB both ways but counts once (one-way equivalent), so ``raw_echo`` is the
*lower* (more generous) ceiling; ``raw_up``/``raw_down`` are the strict one-way ceilings.
Orbit moves the same file bytes plus the base64 overhead (4/3) and its JSON envelope.

Last, the seed's path (the whole file base64 in one message) is tried with the same 200 MiB
file: the client refuses it (``PAYLOAD_TOO_LARGE``), the broker refuses the raw message
(``max_message_size``), and the endpoint refuses a body over its 4 MiB cap. Exit status is 0
whatever the numbers: this is a measurement. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for p in (str(ROOT), str(ROOT / "bench")):
    if p not in sys.path:
        sys.path.insert(0, p)

import aio_pika  # noqa: E402
import rpc  # noqa: E402  (bench/rpc.py: private node, child processes, CPU meter)

from orbit_protocol import naming  # noqa: E402
from orbit_protocol import topology as topo  # noqa: E402

SCRIPT = Path(__file__).resolve()
MiB = 1024 * 1024
PREFETCH = 32  # the endpoint's default prefetch
TARGET = 0.5
REPLY_SIZE_HEADER = "x-bench-reply-size"


# --------------------------------------------------------------------------------------
# raw responder (separate process): echo, or reply with N bytes when asked
# --------------------------------------------------------------------------------------


async def _responder(url: str, queue_name: str) -> None:
    consume_conn = await aio_pika.connect(url)
    channel = await consume_conn.channel()
    await channel.set_qos(prefetch_count=PREFETCH)
    queue = await channel.declare_queue(queue_name, passive=True)
    publish_conn = await aio_pika.connect(url)  # separate connection, as the endpoint
    pub_channel = await publish_conn.channel(publisher_confirms=True)
    exchange = await pub_channel.get_exchange(naming.REPLY_EXCHANGE, ensure=False)
    blob = os.urandom(4 * MiB)

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await message.ack()
        wanted = (message.headers or {}).get(REPLY_SIZE_HEADER)
        body = message.body if wanted is None else blob[: int(str(wanted))]
        reply = aio_pika.Message(
            body,
            content_type="application/octet-stream",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            correlation_id=message.correlation_id,
            message_id=uuid.uuid4().hex,
            type="reply",
            headers={"x-orbit-v": 1},
        )
        await exchange.publish(reply, message.reply_to or "", timeout=60)

    await queue.consume(on_message)
    print("READY", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await consume_conn.close()
    await publish_conn.close()


class RawClient:
    """Raw aio-pika request/reply on Orbit's durable topology, binary bodies."""

    def __init__(self, url: str, target: str) -> None:
        self.url, self.target = url, target
        self.pending: dict[str, asyncio.Future[bytes]] = {}

    async def start(self) -> RawClient:
        self.conn = await aio_pika.connect(self.url)
        publish = await self.conn.channel(publisher_confirms=True)
        replies = await self.conn.channel()
        self.exchange = await publish.get_exchange(naming.REQUEST_EXCHANGE, ensure=False)
        self.reply_queue = naming.reply_queue("bench")
        queue = await replies.declare_queue(
            self.reply_queue, durable=True, arguments=topo.client_queue_arguments()
        )
        await queue.bind(naming.REPLY_EXCHANGE, self.reply_queue)
        await queue.consume(self._on_reply, no_ack=True)
        self.user = self.conn.url.user or "guest"
        return self

    async def _on_reply(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        future = self.pending.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(message.body)

    async def call(self, body: bytes, reply_size: int | None) -> bytes:
        corr = uuid.uuid4().hex
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.pending[corr] = future
        headers: dict[str, aio_pika.abc.FieldValue] = {"x-orbit-v": 1}
        if reply_size is not None:
            headers[REPLY_SIZE_HEADER] = reply_size
        message = aio_pika.Message(
            body,
            content_type="application/octet-stream",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            correlation_id=corr,
            message_id=corr,
            reply_to=self.reply_queue,
            user_id=self.user,
            headers=headers,
        )
        await self.exchange.publish(message, self.target, mandatory=True, timeout=60)
        return await asyncio.wait_for(future, 60)

    async def close(self) -> None:
        await self.conn.close()


async def raw_transfer(
    client: RawClient, mode: str, total: int, chunk: int, parallel: int
) -> dict[str, Any]:
    """Move ``total`` bytes as ``chunk``-sized calls, ``parallel`` in flight."""
    payload = os.urandom(chunk)
    small = b'{"offset":0}'
    offsets = iter(range(0, total, chunk))
    moved = 0

    async def worker() -> None:
        nonlocal moved
        for offset in offsets:
            size = min(chunk, total - offset)
            if mode == "echo":
                got = await client.call(payload[:size], None)
            elif mode == "up":
                got = await client.call(payload[:size], 16)
                got = payload[:size] if len(got) == 16 else b""
            else:
                got = await client.call(small, size)
            if len(got) != size:
                raise RuntimeError(f"{mode}: got {len(got)} bytes, wanted {size}")
            moved += size

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(parallel)))
    seconds = time.perf_counter() - t0
    return {"bytes": moved, "seconds": round(seconds, 3), "mib_s": moved / MiB / seconds}


# --------------------------------------------------------------------------------------
# orbit put / get
# --------------------------------------------------------------------------------------


class Phases:
    """Progress callback recording when the chunks started and finished."""

    def __init__(self) -> None:
        self.first = 0.0
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if not self.first:
            self.first = now
        self.last = now


async def orbit_put(
    client: Any, ep: str, src: Path, remote: Path, chunk: int, parallel: int
) -> dict[str, Any]:
    from orbit_plugins.staging.client import upload

    phases = Phases()
    t0 = time.perf_counter()
    result = await upload(
        client, ep, src, str(remote), progress=phases, chunk_size=chunk, parallel=parallel
    )
    t1 = time.perf_counter()
    size = int(result["size"])
    return {
        "bytes": size,
        "seconds": round(t1 - t0, 3),
        "mib_s": size / MiB / (t1 - t0),
        "chunk_phase_mib_s": size / MiB / max(phases.last - phases.first, 1e-9),
        "before_chunks_s": round(phases.first - t0, 3),
        "after_chunks_s": round(t1 - phases.last, 3),
        "sha256": result["sha256"],
    }


async def orbit_get(
    client: Any, ep: str, remote: Path, local: Path, chunk: int, parallel: int
) -> dict[str, Any]:
    from orbit_plugins.staging.client import download

    phases = Phases()
    t0 = time.perf_counter()
    result = await download(
        client, ep, str(remote), local, progress=phases, chunk_size=chunk, parallel=parallel
    )
    t1 = time.perf_counter()
    size = int(result["size"])
    return {
        "bytes": size,
        "seconds": round(t1 - t0, 3),
        "mib_s": size / MiB / (t1 - t0),
        "chunk_phase_mib_s": size / MiB / max(phases.last - phases.first, 1e-9),
        "before_chunks_s": round(phases.first - t0, 3),
        "after_chunks_s": round(t1 - phases.last, 3),
        "sha256": result["sha256"],
    }


# --------------------------------------------------------------------------------------
# the seed's path: the whole file, base64, in one message
# --------------------------------------------------------------------------------------


async def seed_path(url: str, client: Any, ep: str, src: Path) -> dict[str, Any]:
    """Try the seed's single-message put of ``src`` three ways; record each refusal."""
    from orbit_protocol import OrbitError, Request

    data = await asyncio.to_thread(src.read_bytes)
    args = {"filename": "/tmp/seed-style.bin", "content": base64.b64encode(data).decode()}
    out: dict[str, Any] = {"file_bytes": len(data)}
    del data

    # 1. the Orbit client checks the body against its cap before publishing
    try:
        await client.call(ep, "staging.put", **args)
        out["client"] = {"refused": False}
    except OrbitError as exc:
        out["client"] = {"refused": True, "code": str(exc.code), "message": exc.message}

    # 2. raw AMQP: the broker's max_message_size refuses the message itself
    body = Request(plugin="staging", method="put", args=args).to_bytes()
    del args
    out["body_bytes"] = len(body)
    conn = await aio_pika.connect(url)
    try:
        channel = await conn.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(naming.REQUEST_EXCHANGE, ensure=False)
        message = aio_pika.Message(
            body, content_type="application/json", reply_to="orbit.reply.none", user_id="guest"
        )
        try:
            await exchange.publish(message, ep, mandatory=True, timeout=120)
            out["broker"] = {"refused": False}
        except Exception as exc:  # the broker closes the channel
            out["broker"] = {"refused": True, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        with contextlib.suppress(Exception):
            await conn.close()
    del body

    # 3. a body the broker accepts but over the endpoint's cap: PAYLOAD_TOO_LARGE
    reply = await _raw_request(url, client, ep, 8 * MiB)
    out["endpoint"] = reply
    return out


async def _raw_request(url: str, client: Any, ep: str, file_bytes: int) -> dict[str, Any]:
    """Publish a seed-style put of ``file_bytes`` bytes raw to the endpoint; return its reply."""
    from orbit_protocol import Request

    args = {"filename": "/tmp/x.bin", "content": base64.b64encode(os.urandom(file_bytes)).decode()}
    body = Request(plugin="staging", method="put", args=args).to_bytes()
    conn = await aio_pika.connect(url)
    async with conn:
        channel = await conn.channel(publisher_confirms=True)
        queue = await channel.declare_queue(
            naming.reply_queue("bench"), durable=True, arguments=topo.client_queue_arguments()
        )
        await queue.bind(naming.REPLY_EXCHANGE, queue.name)
        corr = uuid.uuid4().hex
        got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def on_reply(incoming: aio_pika.abc.AbstractIncomingMessage) -> None:
            if incoming.correlation_id == corr and not got.done():
                got.set_result(incoming.body)

        consumer = await queue.consume(on_reply, no_ack=True)
        exchange = await channel.get_exchange(naming.REQUEST_EXCHANGE, ensure=False)
        message = aio_pika.Message(
            body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            correlation_id=corr,
            message_id=corr,
            reply_to=queue.name,
            user_id=conn.url.user or "guest",
            headers={"x-orbit-v": 1},
        )
        await exchange.publish(message, ep, mandatory=True, timeout=60)
        reply = json.loads(await asyncio.wait_for(got, 60))
        await queue.cancel(consumer)
        await queue.delete(if_unused=False, if_empty=False)
    return {"body_bytes": len(body), "reply": reply}


# --------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------


async def _measure(
    res: dict[str, Any], meters: dict[str, Any], tag: str, name: str, meter: str, coro: Any
) -> None:
    """Await ``coro`` (a transfer), add CPU ms per MiB by process, store it as ``res[name]``."""
    before = meters[meter].snap()
    t = time.monotonic()
    out = await coro
    after = meters[meter].snap()
    out["cpu_ms_per_mib"] = rpc.CpuMeter.per_request(before, after, max(1, out["bytes"] // MiB))
    res[name] = out
    print(
        f"  {tag} {name:<10} {out['mib_s']:7.1f} MiB/s  ({time.monotonic() - t:.1f} s)",
        file=sys.stderr,
    )


def make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        left = size
        while left:
            block = os.urandom(min(8 * MiB, left))
            handle.write(block)
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def start_endpoint(url: str, name: str, workdir: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        ORBIT_ENDPOINT_NAME=name,
        ORBIT_ENDPOINT_URL=url,
        ORBIT_ENDPOINT_PLUGINS='["staging"]',
        ORBIT_ENDPOINT_PLUGIN_SETTINGS=json.dumps({"staging": {"roots": [str(workdir)]}}),
        ORBIT_ENDPOINT_STATE_DIR=str(workdir / "state"),
        PYTHONPATH=str(ROOT),
    )
    argv = [sys.executable, *os.environ.get("ORBIT_BENCH_ENDPOINT_PYARGS", "").split()]
    argv += ["-m", "orbit_endpoint"]
    with (workdir / "endpoint.log").open("ab") as log:
        return subprocess.Popen(
            argv, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="orbit-bench-staging-"))
    tag = uuid.uuid4().hex[:6]
    raw_ep, orbit_ep = f"bench-raw-{tag}", f"bench-stage-{tag}"
    node = None
    url = args.url
    responder: rpc.Child | None = None
    endpoint_proc: subprocess.Popen[bytes] | None = None
    declared: list[str] = []
    size, chunk, parallel = args.size_mib * MiB, int(args.chunk_mib * MiB), args.parallel
    try:
        if url is None:
            print("starting a private RabbitMQ node ...", file=sys.stderr)
            node = rpc.start_private_node(workdir)
            url = node.amqp_url("/")
        from orbit_broker.topology import declare_all

        conn = await aio_pika.connect(url)
        assert conn.transport is not None
        server = dict(conn.transport.connection.server_properties)
        channel = await conn.channel()
        await declare_all(url, endpoints=[raw_ep, orbit_ep])
        declared += [naming.request_queue(raw_ep), naming.request_queue(orbit_ep)]

        env = dict(os.environ, PYTHONPATH=str(ROOT))
        argv = [sys.executable, str(SCRIPT), "_responder", "--url", url]
        responder = rpc.Child(
            [*argv, "--queue", naming.request_queue(raw_ep)], env, workdir / "responder.log"
        )
        responder.wait_ready()

        from orbit_client import AsyncOrbitClient

        client = await AsyncOrbitClient(url=url, timeout=120).connect()
        endpoint_proc = start_endpoint(url, orbit_ep, workdir)
        deadline = time.monotonic() + 60
        while await rpc.consumer_count(url, naming.request_queue(orbit_ep)) < 1:
            if endpoint_proc.poll() is not None or time.monotonic() > deadline:
                log = (workdir / "endpoint.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"endpoint did not start:\n{log}")
            await asyncio.sleep(0.2)
        for _ in range(150):  # the client's presence table sees the endpoint online
            if client.presence.online(orbit_ep):
                break
            await asyncio.sleep(0.1)

        raw = await RawClient(url, raw_ep).start()
        src = workdir / "src.bin"
        digest = make_file(src, size)
        (workdir / "remote").mkdir()
        (workdir / "local").mkdir()
        broker_pid = node.pid if node is not None else None
        me = os.getpid()
        meters = {
            "raw": rpc.CpuMeter({"client": me, "server": responder.pid, "broker": broker_pid}),
            "orbit": rpc.CpuMeter(
                {"client": me, "server": endpoint_proc.pid, "broker": broker_pid}
            ),
        }
        profilers = rpc.start_profilers(
            args.profile_dir, {"client": me, "endpoint": endpoint_proc.pid}
        )
        rounds: list[dict[str, Any]] = []
        for r in range(args.rounds):
            res: dict[str, Any] = {}
            tag = f"round {r + 1}/{args.rounds}"
            measure = functools.partial(_measure, res, meters, tag)
            await measure("raw_echo", "raw", raw_transfer(raw, "echo", size, chunk, parallel))
            remote = workdir / "remote" / f"put-{r}.bin"
            await measure(
                "orbit_put", "orbit", orbit_put(client, orbit_ep, src, remote, chunk, parallel)
            )
            await measure("raw_up", "raw", raw_transfer(raw, "up", size, chunk, parallel))
            local = workdir / "local" / f"get-{r}.bin"
            await measure(
                "orbit_get", "orbit", orbit_get(client, orbit_ep, remote, local, chunk, parallel)
            )
            await measure("raw_down", "raw", raw_transfer(raw, "down", size, chunk, parallel))
            assert res["orbit_put"]["sha256"] == res["orbit_get"]["sha256"] == digest
            remote.unlink()
            local.unlink()
            rounds.append(res)
        rpc.stop_profilers(profilers)

        print("  seed path: the whole file base64 in one message ...", file=sys.stderr)
        seed = await seed_path(url, client, orbit_ep, src)
        await raw.close()
        await client.close()
        with contextlib.suppress(Exception):  # the durable reply queues outlive their clients
            await channel.queue_delete(raw.reply_queue)
            await channel.queue_delete(client.reply_queue)
        await conn.close()
        return {
            "rounds": rounds,
            "seed_path": seed,
            "server": {
                "rabbitmq_version": str(server.get("version", "")),
                "erlang": str(server.get("platform", "")),
                "private_node": node is not None,
            },
        }
    finally:
        if endpoint_proc is not None and endpoint_proc.poll() is None:
            endpoint_proc.send_signal(signal.SIGTERM)
            try:
                endpoint_proc.wait(20)
            except subprocess.TimeoutExpired:
                endpoint_proc.kill()
        if responder is not None:
            responder.stop()
        if node is None and url is not None and declared:
            with contextlib.suppress(Exception):
                cleanup = await aio_pika.connect(url)
                async with cleanup:
                    ch = await cleanup.channel()
                    for q in declared:
                        await ch.queue_delete(q)
        if node is not None:
            node.stop()
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Median MiB/s per variant and the ratios (median of the per-round ratios too)."""
    names = list(rounds[0])
    med = {n: statistics.median(r[n]["mib_s"] for r in rounds) for n in names}
    ratios: dict[str, Any] = {}
    for orbit, strict in (("orbit_put", "raw_up"), ("orbit_get", "raw_down")):
        per_round = [r[orbit]["mib_s"] / r["raw_echo"]["mib_s"] for r in rounds]
        value = statistics.median(per_round)
        ratios[f"{orbit} / raw_echo"] = {
            "value": round(value, 3),
            "per_round": [round(x, 3) for x in per_round],
            "target": f">= {TARGET}",
            "pass": value >= TARGET,
        }
        strict_rounds = [r[orbit]["mib_s"] / r[strict]["mib_s"] for r in rounds]
        ratios[f"{orbit} / {strict}"] = {
            "value": round(statistics.median(strict_rounds), 3),
            "per_round": [round(x, 3) for x in strict_rounds],
        }
        # what the MiB/s ratio tends to when the CPUs are saturated (a loaded machine)
        cpu_rounds = [_cpu(r["raw_echo"]) / _cpu(r[orbit]) for r in rounds]
        ratios[f"{orbit} / raw_echo, CPU per MiB (inverse)"] = {
            "value": round(statistics.median(cpu_rounds), 3),
            "per_round": [round(x, 3) for x in cpu_rounds],
        }
    return {"median_mib_s": {n: round(v, 1) for n, v in med.items()}, "ratios": ratios}


def _cpu(result: dict[str, Any]) -> float:
    """CPU ms per MiB summed over client, server (endpoint or responder) and broker."""
    return float(sum(v for v in result["cpu_ms_per_mib"].values() if v == v))  # skip NaN


def render(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 120))
    rounds = doc["rounds"]
    t = Table(title=f"Staging {doc['config']['size_mib']} MiB (median of {len(rounds)} round(s))")
    for h in (
        "variant",
        "MiB/s",
        "per round",
        "chunk phase MiB/s",
        "CPU ms/MiB client/server/broker",
    ):
        t.add_column(h, justify="left" if h == "variant" else "right")
    for name, value in doc["summary"]["median_mib_s"].items():
        last = rounds[-1][name]
        cpu = last["cpu_ms_per_mib"]
        t.add_row(
            name,
            f"{value:.1f}",
            " ".join(f"{r[name]['mib_s']:.1f}" for r in rounds),
            f"{last['chunk_phase_mib_s']:.1f}" if "chunk_phase_mib_s" in last else "",
            "/".join(
                f"{cpu.get(k, float('nan')):.1f}"
                for k in ("client", "server", "broker")
                if k in cpu
            ),
        )
    console.print(t)
    rt = Table(title="Ratios")
    for h in ("ratio", "value", "per round", "target", "result"):
        rt.add_column(h)
    for name, r in doc["summary"]["ratios"].items():
        verdict = "" if "pass" not in r else ("PASS" if r["pass"] else "MISS")
        rt.add_row(
            name,
            f"{r['value']:.3f}",
            " ".join(map(str, r["per_round"])),
            r.get("target", ""),
            verdict,
        )
    console.print(rt)
    seed = doc["seed_path"]
    console.print(
        f"[bold]The seed's path[/]: the whole {seed['file_bytes'] // MiB} MiB file base64 in"
        f" one message ({seed['body_bytes'] / MiB:.0f} MiB body)"
    )
    for who in ("client", "broker"):
        r = seed[who]
        what = (
            r.get("code", "") + " " + r.get("message", r.get("error", ""))
            if r["refused"]
            else "accepted?!"
        )
        console.print(f"  {who:<9} {what}")
    e = seed["endpoint"]
    err = e["reply"].get("error") or {}
    console.print(
        f"  endpoint  ({e['body_bytes'] / MiB:.1f} MiB body, under the broker's cap)"
        f" {err.get('code', '')} {err.get('message', e['reply'])}"
    )


def _client_b64_fast() -> bool:
    from orbit_plugins.staging import codec

    return codec.FAST


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="AMQP URL incl. vhost (default: start a private node)")
    parser.add_argument("--size-mib", type=int, default=200)
    parser.add_argument("--chunk-mib", type=float, default=1.0)
    parser.add_argument("--parallel", type=int, default=None, help="default: the client's")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    parser.add_argument(
        "--profile-dir",
        type=Path,
        help="attach py-spy (pip install py-spy) to this process and the endpoint during the"
        " rounds; raw samples are written there (summarise with bench/pyspy_top.py)",
    )
    sub = parser.add_subparsers(dest="role")
    resp = sub.add_parser("_responder")
    resp.add_argument("--url", required=True)
    resp.add_argument("--queue", required=True)
    args = parser.parse_args()
    if args.role == "_responder":
        asyncio.run(_responder(args.url, args.queue))
        return 0
    if args.parallel is None:
        from orbit_plugins.staging.client import DEFAULT_PARALLEL

        args.parallel = DEFAULT_PARALLEL
    started = time.time()
    info = rpc.machine()
    result = asyncio.run(run(args))
    doc = {
        "benchmark": "orbit staging",
        "started_at": started,
        "duration_s": round(time.time() - started, 1),
        "config": {
            "size_mib": args.size_mib,
            "chunk_mib": args.chunk_mib,
            "parallel": args.parallel,
            "rounds": args.rounds,
            "endpoint_prefetch": PREFETCH,
            "base64": "pybase64" if _client_b64_fast() else "stdlib",
            "counting": "payload MiB delivered one way per wall-clock second; an echo counts once",
            "url": None if args.url is None else rpc._safe(args.url),
        },
        "machine": info | {"rabbitmq_version": result["server"]["rabbitmq_version"]},
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "summary": summarise(result["rounds"]),
        "rounds": result["rounds"],
        "seed_path": result["seed_path"],
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


if __name__ == "__main__":
    sys.exit(main())
