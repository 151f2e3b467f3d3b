"""The plugin's own tests: no RabbitMQ, an endpoint and a client on the in-memory broker.
Run them with ``pip install -e '.[test]'`` and then ``pytest`` in this distribution."""

from __future__ import annotations

import asyncio

import pytest
from orbit_hello.client import AsyncHello
from orbit_hello.schema import Greeting

from orbit_client import InvalidArgs
from orbit_endpoint.testing import memory_endpoint

HELLO = ["orbit_hello.plugin:HelloPlugin"]  # or "hello", its entry point, once installed


async def test_greet_answers_and_counts() -> None:
    async with memory_endpoint(plugins=HELLO) as stack:
        hello = AsyncHello(stack.client, stack.name)
        first = await hello.greet("Ada")
        assert first == Greeting(text="Hello, Ada!", endpoint="ep1", count=1)
        assert (await hello.greet("Grace", shout=True)).text == "HELLO, GRACE!"


async def test_greet_emits_an_event() -> None:
    async with memory_endpoint(plugins=HELLO) as stack:
        async with await stack.client.subscribe(stack.name, "hello", "greeted") as events:
            await AsyncHello(stack.client, stack.name).greet("Ada")
            event = await asyncio.wait_for(events.get(), 5)
        assert event.data == {"name": "Ada", "by": stack.client.user}


async def test_bad_arguments_are_refused_by_the_endpoint() -> None:
    async with memory_endpoint(plugins=HELLO) as stack:
        with pytest.raises(InvalidArgs) as refused:  # the schema says min_length=1
            await stack.client.call(stack.name, "hello.greet", name="")
        assert refused.value.code == "INVALID_ARGS"
