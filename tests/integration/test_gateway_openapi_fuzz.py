"""Property-based fuzzing of the gateway's HTTP API from its own OpenAPI document
(schemathesis generates the requests, hypothesis drives them) against a real gateway
process, a real broker and real endpoints: logged out, and logged in as a user granted one
of two endpoints. No answer may be a 500 (a 502/503/504 only with a documented error code),
logged-out requests get nothing but 401 (or a 422 for a request that is not even well
formed), the other endpoint is never reached, and the gateway serves a real call afterwards.
``ORBIT_OPENAPI_FUZZ_N`` examples per operation (``make trust``: 200; the suite: 10)."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_gateway_auth import world  # noqa: F401 (fixture)

pytestmark = [pytest.mark.rabbit, pytest.mark.slow]

EXAMPLES = int(os.environ.get("ORBIT_OPENAPI_FUZZ_N", "10"))
PUBLIC = {"/api/login", "/api/logout", "/api/pages", "/asyncapi.json"}
"""Routes that answer without a session (login, logout, the page list, the AsyncAPI document)."""
STREAMS = {"/events"}
"""Server-sent events never end: checked by hand below, not fuzzed."""
RPC = "/api/{endpoint}/{plugin}/{method}"
UPSTREAM = {"ENDPOINT_OFFLINE", "ENDPOINT_BUSY", "UNAVAILABLE", "DEADLINE_EXCEEDED", "BROKER"}
"""The 5xx answers the gateway gives by design (docs/gateway.md): the endpoint or the broker
is not there or too slow. A 500 (a crash, or INTERNAL) fails the test."""


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _fuzz(
    base: str,
    headers: dict[str, str],
    check: Callable[[Any, int], None],
    endpoints: list[str] | None = None,
) -> dict[str, int]:
    """Fuzz every operation; ``check(case, status)`` judges each answer. With ``endpoints``,
    the RPC route's ``endpoint`` is drawn from them. Returns the requests sent per operation."""
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    sent: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in STREAMS:
            continue
        strategy = operation.as_strategy()
        if endpoints and operation.path == RPC:
            strategy = st.tuples(strategy, st.sampled_from(endpoints)).map(_aimed)

        _run(strategy, base, headers, check, sent)
    return sent


def _run(
    strategy: Any,
    base: str,
    headers: dict[str, str],
    check: Callable[[Any, int], None],
    sent: dict[str, int],
) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call(base_url=base, headers=headers, timeout=30)
        label = f"{case.method} {case.operation.path}"
        sent[label] = sent.get(label, 0) + 1
        if response.status_code >= 500:  # only a documented upstream state, never a crash
            assert _error_code(response) in UPSTREAM and response.status_code != 500, (
                case.method,
                case.formatted_path,
                response.status_code,
                response.text,
            )
        check(case, response.status_code)

    run()


def _error_code(response: Any) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") or body.get("detail") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def _aimed(drawn: tuple[Any, str]) -> Any:
    case, endpoint = drawn
    case.path_parameters = {**(case.path_parameters or {}), "endpoint": endpoint}
    return case


async def test_openapi_fuzz_gateway_logged_out_and_in(world: dict[str, Any]) -> None:  # noqa: F811
    a, b, gateway = world["a"], world["b"], world["gateway"]

    def logged_out(case: Any, status: int) -> None:
        if case.operation.path not in PUBLIC:
            assert status in (401, 422), (case.method, case.formatted_path, status)

    reached_b: list[str] = []

    def logged_in(case: Any, status: int) -> None:
        if (case.path_parameters or {}).get("endpoint") == b and status < 300:
            reached_b.append(f"{case.method} {case.formatted_path}")

    started = time.monotonic()
    out = await asyncio.to_thread(_fuzz, gateway.base, {}, logged_out)
    assert out.get(f"POST {RPC}", 0) >= EXAMPLES // 2, out  # the fuzzer reached the RPC route
    auth = _basic(world["user"], world["password"])
    into = await asyncio.to_thread(_fuzz, gateway.base, auth, logged_in, [a, b])
    assert into.get(f"POST {RPC}", 0) >= EXAMPLES // 2, into
    assert reached_b == []  # never the endpoint this user was not granted
    print(
        f"\nopenapi fuzz: {sum(out.values())} requests logged out, {sum(into.values())} logged"
        f" in over {len(into)} operations in {time.monotonic() - started:.0f} s:"
        " no 500, no unauthenticated answer, the ungranted endpoint never reached"
    )

    async with httpx.AsyncClient(base_url=gateway.base, timeout=30) as http:
        assert (await http.get("/events")).status_code == 401  # the stream, logged out
        # found by this fuzzer: the AMQP client takes an empty user or password for the
        # broker's default guest/guest, so these were sessions of guest (and a bad name a 500)
        for user, password in [("guest", ""), ("", ""), ("", "guest"), ("Not A Name", "x")]:
            refused = await http.post("/api/login", json={"user": user, "password": password})
            assert refused.status_code == 401, (user, password, refused.text)
            basic = await http.get("/api/whoami", headers=_basic(user, password))
            assert basic.status_code == 401, (user, password, basic.text)
        echo = await http.post(f"/api/{a}/testkit/echo", json={"value": 7}, headers=auth)
        assert echo.json()["result"] == {"value": 7}  # the gateway serves on
    assert gateway.proc.poll() is None
