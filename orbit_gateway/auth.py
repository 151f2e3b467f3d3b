"""Logins: each user's own broker credentials open that user's own ``AsyncOrbitClient``.

The gateway holds no broker rights of its own. A request authenticates with HTTP Basic
(the broker user and password), or with the token that ``POST /api/login`` returns
(also set as the ``orbit_session`` cookie, which ``EventSource`` sends by itself).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import HTTPException, Request

from orbit_client import AsyncOrbitClient
from orbit_protocol import AuthenticationFailed, BrokerError, naming

from .hub import EventHub
from .settings import GatewaySettings

COOKIE = "orbit_session"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="orbit"'}  # Bearer: browsers show no pop-up


@dataclass(eq=False)
class UserSession:
    user: str
    token: str
    client: AsyncOrbitClient
    hub: EventHub


class SessionStore:
    """Sessions by token and by (user, keyed hash of the password)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self._by_token: dict[str, UserSession] = {}
        self._by_cred: dict[tuple[str, bytes], UserSession] = {}
        self._key = secrets.token_bytes(32)
        self._lock = asyncio.Lock()

    def _digest(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode(), hashlib.sha256).digest()

    async def login(self, user: str, password: str) -> UserSession:
        """The user's session, connecting to the broker as that user on first use."""
        cred = (user, self._digest(password))
        async with self._lock:
            found = self._by_cred.get(cred)
            if found is not None:
                return found
            client = AsyncOrbitClient(
                url=self.settings.user_url(user, password), timeout=self.settings.call_timeout
            )
            hub = EventHub(
                client, history=self.settings.history, client_queue=self.settings.client_queue
            )
            try:
                await client.connect()
                await hub.start()
            except BaseException:
                await hub.close()
                await client.close()
                raise
            session = UserSession(user, secrets.token_urlsafe(32), client, hub)
            self._by_cred[cred] = session
            self._by_token[session.token] = session
            return session

    def by_token(self, token: str) -> UserSession | None:
        return self._by_token.get(token)

    async def logout(self, session: UserSession) -> None:
        self._by_token.pop(session.token, None)
        for cred, found in list(self._by_cred.items()):
            if found is session:
                del self._by_cred[cred]
        await session.hub.close()
        await session.client.close()

    async def close(self) -> None:
        for session in list(self._by_token.values()):
            await self.logout(session)


def _basic(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def unauthorized(message: str) -> HTTPException:
    return HTTPException(401, {"code": "NOT_AUTHENTICATED", "message": message}, _CHALLENGE)


async def login_or_401(store: SessionStore, user: str, password: str) -> UserSession:
    """The session of ``user``, or 401. An empty user or password is refused here: the AMQP
    client would put the broker's default ``guest`` in its place."""
    if not password:
        raise unauthorized("give the password of your broker user")
    try:
        naming.validate_name(user, "user")
    except ValueError as exc:
        raise unauthorized(str(exc)) from None
    try:
        return await store.login(user, password)
    except AuthenticationFailed:
        raise unauthorized("the broker refused these credentials") from None
    except BrokerError as exc:
        raise HTTPException(502, {"code": "BROKER", "message": exc.message}) from None


async def current_session(request: Request) -> UserSession:
    """FastAPI dependency: the caller's session, or 401."""
    store: SessionStore = request.app.state.sessions
    header = request.headers.get("authorization", "")
    creds = _basic(header)
    if creds is not None:
        return await login_or_401(store, *creds)
    token = header[7:] if header.lower().startswith("bearer ") else request.cookies.get(COOKIE)
    session = store.by_token(token) if token else None
    if session is None:
        raise unauthorized("log in with your broker user and password")
    return session


__all__ = ["COOKIE", "SessionStore", "UserSession", "current_session", "login_or_401"]
