"""The in-memory broker node: vhosts, users, connections, and the faults tests inject.

Brokers register by name in this process; ``memory://user:password@<name>/<vhost>`` URLs
reach them through :class:`~orbit_amqp.memory.transport.MemoryTransport`.
"""

from __future__ import annotations

import asyncio
import itertools
import threading

from orbit_protocol.errors import AuthenticationFailed, BrokerError

from ..errors import ConnectionLost
from .auth import Grants, Permissions, TopicPermissions, User
from .transport import MemoryConnection
from .vhost import VHost

REGISTRY: dict[str, MemoryBroker] = {}
"""Brokers of this process by name."""


class MemoryBroker:
    """A broker in this process. With no users added, anybody logs in with full rights."""

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.vhosts: dict[str, VHost] = {}
        self.users: dict[str, User] = {}
        self.connections: set[MemoryConnection] = set()
        self.lock = threading.RLock()
        """Held by every operation: clients on other threads' event loops (the blocking
        ``OrbitClient``) share the broker safely."""
        self._clear = threading.Event()
        self._clear.set()
        self.running = True
        self.tags = itertools.count(1)
        REGISTRY[name] = self

    def url(self, user: str = "guest", password: str = "guest", vhost: str = "orbit") -> str:
        return f"memory://{user}:{password}@{self.name}/{vhost}"

    def vhost(self, name: str = "orbit") -> VHost:
        with self.lock:
            return self.vhosts.setdefault(name, VHost(name, self.lock))

    # -- users ---------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> User:
        user = self.users[name] = User(name, password)
        return user

    def set_permissions(self, user: str, vhost: str, permissions: Permissions) -> None:
        self.users[user].permissions[vhost] = permissions

    def set_topic_permissions(
        self, user: str, vhost: str, exchange: str, permissions: TopicPermissions
    ) -> None:
        self.users[user].topics[(vhost, exchange)] = permissions

    def delete_user(self, name: str) -> None:
        """Remove a user and close its connections (as RabbitMQ does)."""
        self.users.pop(name, None)
        self.drop_connections(name)

    # -- faults --------------------------------------------------------------------

    def drop_connections(self, user: str | None = None) -> int:
        """Break connections (all, or one user's) as a network failure would."""
        with self.lock:
            victims = [c for c in self.connections if user is None or c.user == user]
        for conn in victims:
            conn.lose(ConnectionLost("connection reset by the broker"))
        return len(victims)

    def stop(self) -> None:
        """Drop every connection and refuse new ones until :meth:`start`."""
        self.running = False
        self.drop_connections()

    def start(self) -> None:
        self.running = True

    @property
    def alarm(self) -> bool:
        """On: every connection is blocked (as by a memory or disk alarm)."""
        return not self._clear.is_set()

    def set_alarm(self, on: bool) -> None:
        if on:
            self._clear.clear()
        else:
            self._clear.set()

    async def unblocked(self, timeout: float | None) -> None:
        """Return once the alarm is off; ``TimeoutError`` after ``timeout``."""
        if self._clear.is_set():
            return
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, self._clear.wait, timeout):
            raise TimeoutError("the broker stayed blocked")

    def close(self) -> None:
        self.stop()
        if REGISTRY.get(self.name) is self:
            del REGISTRY[self.name]

    # -- login ---------------------------------------------------------------------

    def login(self, user: str, password: str, vhost: str) -> MemoryConnection:
        if not self.running:
            raise BrokerError(f"cannot reach the in-memory broker {self.name!r}: it is stopped")
        account = self.users.get(user)
        if self.users and (account is None or account.password != password):
            raise AuthenticationFailed(
                f"the in-memory broker {self.name!r} refused the credentials of {user!r}"
            )
        if account is not None and vhost not in account.permissions:
            raise BrokerError(f"NOT_ALLOWED - access to vhost '{vhost}' refused for user '{user}'")
        conn = MemoryConnection(self, self.vhost(vhost), Grants(account, vhost), user)
        with self.lock:
            self.connections.add(conn)
        return conn


__all__ = ["REGISTRY", "MemoryBroker"]
