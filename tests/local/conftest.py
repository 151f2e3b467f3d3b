"""The integration fixtures' names, served by the memory broker, for tests moved here.

``start_endpoint(name, **settings)``, ``client`` and ``amqp_url`` behave as in
``tests/integration/conftest.py`` (an endpoint with its queue declared, a connected client,
the URL of the test's broker), but everything runs in this process on the memory transport.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from orbit_client import AsyncOrbitClient
from tests.testkit.local import Local, LocalEndpoint

StartEndpoint = Callable[..., Awaitable[LocalEndpoint]]


@pytest.fixture
def amqp_url(local: Local) -> str:
    return local.url()


@pytest.fixture
def start_endpoint(local: Local) -> StartEndpoint:
    async def start(name: str = "ep1", **settings: Any) -> LocalEndpoint:
        return await local.endpoint(name, **settings)

    return start


@pytest.fixture
def client(local_client: AsyncOrbitClient) -> AsyncOrbitClient:
    return local_client
