"""``/api``: login, endpoints and JSON RPC (``POST /api/{endpoint}/{plugin}/{method}``)."""

from __future__ import annotations

import contextlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from orbit_protocol import BadRequest, BrokerError, ErrorCode, NotFound, OrbitError, Reply

from .auth import COOKIE, SessionStore, UserSession, current_session, login_or_401

router = APIRouter(prefix="/api")

STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.UNKNOWN_PLUGIN: 404,
    ErrorCode.UNKNOWN_METHOD: 404,
    ErrorCode.INVALID_ARGS: 422,
    ErrorCode.NOT_AUTHORIZED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.ENDPOINT_BUSY: 503,
    ErrorCode.DEADLINE_EXCEEDED: 504,
    ErrorCode.CANCELLED: 409,
    ErrorCode.ENDPOINT_OFFLINE: 503,
    ErrorCode.POISON_MESSAGE: 500,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
}
Session = Annotated[UserSession, Depends(current_session)]


class Login(BaseModel):
    user: str
    password: str


def reply_response(reply: Reply, status: int | None = None) -> JSONResponse:
    """The Orbit reply body as is; the HTTP status follows the error code."""
    if status is None:
        status = 200 if reply.error is None else STATUS.get(reply.error.code, 500)
    return JSONResponse(json.loads(reply.to_bytes()), status_code=status)


@router.post("/login")
async def login(body: Login, request: Request, response: Response) -> dict[str, str]:
    """Check the broker credentials; returns a token and sets it as a cookie."""
    store: SessionStore = request.app.state.sessions
    session = await login_or_401(store, body.user, body.password)
    secure = request.url.scheme == "https"
    response.set_cookie(COOKIE, session.token, httponly=True, samesite="strict", secure=secure)
    return {"user": session.user, "token": session.token}


@router.post("/logout")
async def logout(session: Session, request: Request, response: Response) -> dict[str, bool]:
    await request.app.state.sessions.logout(session)
    response.delete_cookie(COOKIE)
    return {"ok": True}


@router.get("/whoami")
async def whoami(session: Session) -> dict[str, Any]:
    hub = session.hub
    return {
        "user": session.user,
        "follows_all": hub.follows_all,
        "directory": hub.granted is not None,
    }


@router.get("/endpoints")
async def endpoints(session: Session) -> dict[str, Any]:
    """Every endpoint of the user's directory (online or not), and every other endpoint
    heard through presence, by name (docs/directory.md)."""
    found = {name: info.as_entry() for name, info in session.client.endpoints().items()}
    with contextlib.suppress(NotFound):
        entries = await session.hub.directory()
        found |= {e.name: e for e in entries if e.kind == "endpoint"}
    return {name: entry.as_dict() for name, entry in sorted(found.items())}


@router.get("/directory")
async def directory(session: Session) -> list[dict[str, Any]]:
    """The user's directory: granted endpoints, then pools; 404 if the broker keeps none."""
    try:
        return [entry.as_dict() for entry in await session.hub.directory()]
    except NotFound as exc:
        raise HTTPException(404, {"code": "NOT_FOUND", "message": exc.message}) from None


@router.post("/{endpoint}/{plugin}/{method}")
async def call(
    endpoint: str,
    plugin: str,
    method: str,
    request: Request,
    session: Session,
    timeout: Annotated[
        float | None, Query(gt=0, le=86400, description="seconds (default: the gateway's)")
    ] = None,
) -> JSONResponse:
    """Call ``plugin.method`` on ``endpoint`` with the JSON body as arguments."""
    raw = await request.body()
    try:
        args = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as exc:
        return reply_response(Reply.failure(BadRequest(f"body is not JSON: {exc}")))
    if not isinstance(args, dict):
        return reply_response(Reply.failure(BadRequest("body must be a JSON object")))
    wait = timeout or request.app.state.settings.call_timeout
    try:
        reply = await session.client.request(endpoint, f"{plugin}.{method}", args, timeout=wait)
    except BrokerError as exc:
        raise HTTPException(502, {"code": "BROKER", "message": exc.message}) from None
    except OrbitError as exc:
        reply = Reply.failure(exc)
    except ValueError as exc:  # invalid endpoint name
        reply = Reply.failure(BadRequest(str(exc)))
    return reply_response(reply)


__all__ = ["STATUS", "router"]
