"""Request lifecycle, journal and plugin contract, without a broker."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from pydantic import BaseModel

from orbit_endpoint.journal import Journal, args_digest
from orbit_endpoint.lifecycle import Lifecycle, Policy
from orbit_endpoint.registry import LoadedPlugin, Registry, load
from orbit_plugins import Call, Plugin, Prepared, operation
from orbit_protocol import ErrorCode, Request
from tests.testkit.plugin import KitPlugin


def call(user: str = "alice", admin: bool = False) -> Call:
    return Call(request_id="r1", user=user, endpoint="ep", is_admin=admin)


POLICY = Policy("ep", frozenset({"ep"}), frozenset({"alice"}), frozenset(), False, 1 << 20)


async def _no_reply(reply_to: str, corr: str, body: bytes) -> None:
    raise AssertionError("no reply expected")


def _no_spawn(coro: object) -> asyncio.Task[object]:
    raise AssertionError("nothing to spawn")


def lifecycle(  # type: ignore[no-untyped-def]
    debug: bool = False, journal: Journal | None = None, send_reply=_no_reply, spawn=_no_spawn
) -> Lifecycle:
    plugins = {
        "testkit": LoadedPlugin("testkit", KitPlugin()),
        "broken": LoadedPlugin("broken", error="ImportError: no module named fake_slurm"),
    }
    journal = journal or Journal(":memory:")  # type: ignore[arg-type]
    return Lifecycle(POLICY, journal, Registry(plugins), send_reply, spawn, debug=debug)


async def run(d: Lifecycle, plugin: str, method: str, **args: object):  # type: ignore[no-untyped-def]
    return await d.dispatch(Request(plugin=plugin, method=method, args=args), call())


@pytest.mark.parametrize(
    ("plugin", "method", "args", "code"),
    [
        ("nope", "x", {}, ErrorCode.UNKNOWN_PLUGIN),
        ("testkit", "nope", {}, ErrorCode.UNKNOWN_METHOD),
        ("testkit", "sleep", {"seconds": "soon"}, ErrorCode.INVALID_ARGS),
        ("testkit", "sleep", {}, ErrorCode.INVALID_ARGS),
        ("broken", "x", {}, ErrorCode.UNAVAILABLE),
        ("testkit", "fail", {"kind": "unavailable"}, ErrorCode.UNAVAILABLE),
        ("testkit", "fail", {"kind": "not_found"}, ErrorCode.NOT_FOUND),
        ("testkit", "fail", {}, ErrorCode.INTERNAL),
    ],
)
async def test_errors_map_to_codes(plugin: str, method: str, args: dict, code: ErrorCode) -> None:
    reply = await run(lifecycle(), plugin, method, **args)
    assert not reply.ok and reply.error is not None
    assert reply.error.code is code
    assert reply.error.message


async def test_invalid_args_details_list_pydantic_errors() -> None:
    reply = await run(lifecycle(), "testkit", "sleep", seconds=-1)
    assert reply.error is not None
    assert reply.error.details["errors"][0]["loc"] == ["seconds"]


async def test_internal_hides_traceback_unless_debug() -> None:
    quiet = await run(lifecycle(), "testkit", "fail")
    loud = await run(lifecycle(debug=True), "testkit", "fail")
    assert quiet.error is not None and "traceback" not in quiet.error.details
    assert loud.error is not None and "RuntimeError: boom" in loud.error.details["traceback"]


async def test_success_and_thread_offload() -> None:
    d = lifecycle()
    reply = await run(d, "testkit", "echo", value=[1, "a"])
    assert reply.ok and reply.result == {"value": [1, "a"]}
    # a blocking operation runs in a thread: the loop keeps serving meanwhile
    slow = asyncio.create_task(run(d, "testkit", "blocking_sleep", seconds=0.3))
    quick = await asyncio.wait_for(run(d, "testkit", "echo", value=1), 0.2)
    assert quick.ok
    assert (await slow).ok


def test_operation_signature_is_checked() -> None:
    with pytest.raises(TypeError, match="must be annotated"):

        class Bad(Plugin):
            name = "bad"

            @operation
            def op(self, x: int) -> int:
                return x


class Args(BaseModel):
    n: int


def test_unjournaled_operation_must_be_idempotent() -> None:
    with pytest.raises(TypeError, match="journal=False must be idempotent"):
        operation(journal=False)


def test_operation_schemas() -> None:
    class P(Plugin):
        name = "p"

        @operation(idempotent=True)
        def double(self, args: Args) -> int:
            """Double n."""
            return args.n * 2

    spec = P.operations()["double"]
    assert spec.idempotent and spec.doc == "Double n."
    assert spec.json_schemas()["args"]["required"] == ["n"]
    assert spec.json_schemas()["result"] == {"type": "integer"}


async def test_a_prepared_result_keeps_its_schema_and_is_sent_as_is() -> None:
    class P(Plugin):
        name = "p"

        @operation(idempotent=True)
        async def numbers(self, args: Args) -> Prepared[list[int]]:
            """Numbers already in JSON form."""
            return Prepared(list(range(args.n)))

    spec = P.operations()["numbers"]
    assert spec.json_schemas()["result"] == {"items": {"type": "integer"}, "type": "array"}
    call = Call("r", "u", "ep")
    assert await P().invoke(spec, Args(n=3), call) == [0, 1, 2]


def test_registry_records_failures() -> None:
    plugins = load(["tests.testkit.plugin:KitPlugin", "no_such_plugin", "nomod:Thing"], {})
    assert plugins["testkit"].plugin is not None
    assert plugins["no_such_plugin"].plugin is None
    assert "no plugin named 'no_such_plugin'" in (plugins["no_such_plugin"].error or "")
    assert "ModuleNotFoundError" in (plugins["thing"].error or "")


def test_journal_idempotency_and_states(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    digest = args_digest("p", "m", {"a": 1})
    assert digest == args_digest("p", "m", {"a": 1})
    assert digest != args_digest("p", "m", {"a": 2})
    journal.accept(
        user="u",
        key="k",
        request_id="r",
        plugin="p",
        method="m",
        args={"a": 1},
        args_hash=digest,
        reply_to="q",
        deadline=None,
    )
    assert [e.key for e in journal.pending("accepted")] == ["k"]
    journal.finish("u", "k", b"reply")
    assert journal.get("u", "k").reply == b"reply"  # type: ignore[union-attr]
    journal.mark_replied("u", "k")
    assert journal.pending("done") == [] and journal.find("r").state == "replied"  # type: ignore[union-attr]
    journal.close()
    # survives reopening (what a restart sees)
    again = Journal(tmp_path / "j.sqlite")
    assert again.get("u", "k").state == "replied"  # type: ignore[union-attr]
    assert again.get("other-user", "k") is None


def test_journal_counts_resumes_and_upgrades_an_older_file(tmp_path: Path) -> None:
    """A journal written before ``resumes`` existed gains the column; counts are durable."""
    import sqlite3

    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE requests (user TEXT NOT NULL, key TEXT NOT NULL, request_id TEXT NOT NULL,"
        " plugin TEXT NOT NULL, method TEXT NOT NULL, args_hash TEXT NOT NULL,"
        " args TEXT NOT NULL, reply_to TEXT NOT NULL, deadline REAL, state TEXT NOT NULL,"
        " reply BLOB, accepted_at REAL NOT NULL, finished_at REAL, PRIMARY KEY (user, key));"
        "INSERT INTO requests VALUES"
        " ('u','k','r','p','m','h','{}','q',NULL,'accepted',NULL,1,NULL);"
    )
    old.commit()
    old.close()
    journal = Journal(path)
    assert [e.resumes for e in journal.pending("accepted")] == [0]
    assert journal.count_resume("u", "k") == 1
    assert journal.count_resume("u", "k") == 2
    assert journal.count_resume("u", "missing") == 0
    journal.finish("u", "k", b"reply")
    assert journal.count_resume("u", "k") == 0  # only accepted requests are re-run
    journal.close()
    assert Journal(path).get("u", "k").resumes == 2  # type: ignore[union-attr]


async def test_a_request_whose_ack_fails_is_forgotten(tmp_path: Path) -> None:
    """Journaled, but the ack never reached the broker: the redelivery must be fresh work."""
    from types import SimpleNamespace

    journal = Journal(tmp_path / "journal.db")
    replies: list[bytes] = []

    async def send_reply(reply_to: str, corr: str, body: bytes) -> None:
        replies.append(body)

    intake = lifecycle(journal=journal, send_reply=send_reply)

    def delivery(ack_fails: bool, error: BaseException | None = None) -> SimpleNamespace:
        async def ack() -> None:
            if ack_fails:
                raise error or ConnectionError("channel closed")

        return SimpleNamespace(
            reply_to="orbit.reply.alice.x",
            correlation_id="req-1",
            message_id="req-1",
            routing_key="ep",
            headers={},
            user_id="alice",
            body=Request(plugin="testkit", method="echo", args={"value": 1}).to_bytes(),
            ack=ack,
        )

    with pytest.raises(ConnectionError):
        await intake.intake(delivery(ack_fails=True))  # type: ignore[arg-type]
    assert journal.get("alice", "req-1") is None
    # aiormq cancels an ack caught in a dying connection: the row must go just the same
    cancelled = delivery(ack_fails=True, error=asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await intake.intake(cancelled)  # type: ignore[arg-type]
    assert journal.get("alice", "req-1") is None
    accepted = await intake.intake(delivery(ack_fails=False))  # type: ignore[arg-type]
    assert accepted is not None and accepted.correlation_id == "req-1"
    assert journal.get("alice", "req-1") is not None and replies == []


def test_batch_allocation_from_the_scheduler_environment() -> None:
    from orbit_endpoint.allocation import batch_allocation

    assert batch_allocation({"HOME": "/root"}) is None
    slurm = {"SLURM_JOB_ID": "42", "SLURM_JOB_NODELIST": "nid[001-002]", "SLURM_JOB_NUM_NODES": "2"}
    assert batch_allocation(slurm) == {
        "scheduler": "slurm",
        "job_id": "42",
        "nodes": "nid[001-002]",
        "num_nodes": "2",
    }
    assert batch_allocation({"PBS_JOBID": "7.pbs", "PBS_QUEUE": "debug"}) == {
        "scheduler": "pbs",
        "job_id": "7.pbs",
        "queue": "debug",
    }
    assert batch_allocation({"LSB_JOBID": "9", "LSB_HOSTS": "a b"})["scheduler"] == "lsf"  # type: ignore[index]


def test_args_digest_of_ordinary_args_is_sha256_of_sorted_json() -> None:
    # journals written before long strings got their own hash keep matching
    expected = hashlib.sha256(b'["p","m",{"a":[1,{"b":"x","c":null}],"z":2}]').hexdigest()
    assert args_digest("p", "m", {"z": 2, "a": [1, {"c": None, "b": "x"}]}) == expected


def test_args_digest_tells_long_strings_apart_and_ignores_key_order() -> None:
    blob = "A" * (1 << 20)
    other = blob[:-1] + "B"
    digest = args_digest("staging", "put_chunk", {"offset": 0, "data": blob})
    assert digest == args_digest("staging", "put_chunk", {"data": blob, "offset": 0})
    assert digest != args_digest("staging", "put_chunk", {"offset": 0, "data": other})
    assert digest != args_digest("staging", "put_chunk", {"offset": 1, "data": blob})
    assert digest != args_digest("staging", "put_chunk", {"offset": 0, "data": blob + "A"})


def test_backoff_stays_short_while_an_outage_is_young() -> None:
    """A broker restart (seconds) is followed by a reconnect within 5 s; a long outage backs
    off to the 30 s maximum (full jitter, never below the minimum)."""
    from orbit_amqp import backoff_delays

    delay = backoff_delays(0.5, 30.0)
    young = [delay(attempt, 15.0) for attempt in range(20) for _ in range(50)]
    old = [delay(attempt, 600.0) for attempt in range(20) for _ in range(50)]
    assert min(young) >= 0.5 and max(young) <= 5.0
    assert max(old) > 20.0 and max(old) <= 30.0
    assert max(delay(0, 600.0) for _ in range(50)) == 0.5  # the first retry stays quick
