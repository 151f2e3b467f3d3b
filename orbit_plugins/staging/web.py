"""``GET``/``PUT /api/{endpoint}/files?path=``: whole-file download and upload for browsers.

The staging feature's gateway side, added to the gateway through the entry point group
``orbit.gateway`` (``docs/plugins/authoring.md``).

A browser cannot cheaply base64 a file and checksum it before ``staging.put_begin``, so the
gateway does it: an upload is spooled (memory, then a temp file) while its SHA-256 is
computed, then sent with the staging plugin's own ``put_begin`` / ``put_chunk`` /
``put_commit`` as the logged-in user; a download streams ``staging.get_chunk`` replies.
Nothing here has rights of its own: the endpoint's staging path policy and ownership apply.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import PurePosixPath
from typing import IO, Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from orbit_client import AsyncOrbitClient
from orbit_gateway.api import reply_response
from orbit_gateway.auth import UserSession, current_session
from orbit_protocol import BadRequest, InvalidArgs, OrbitError, PayloadTooLarge, Reply

router = APIRouter(prefix="/api")
Session = Annotated[UserSession, Depends(current_session)]
CHUNK = 1024 * 1024
SPOOL = 8 * CHUNK


def _failure(exc: OrbitError) -> JSONResponse:
    return reply_response(Reply.failure(exc))


async def _first_chunk(
    client: AsyncOrbitClient, endpoint: str, path: str
) -> tuple[dict[str, Any], int]:
    """The first chunk and the chunk size to ask for: ours, or the endpoint's smaller cap."""
    try:
        return await client.call(
            endpoint, "staging.get_chunk", path=path, offset=0, size=CHUNK
        ), CHUNK
    except InvalidArgs as exc:
        size = exc.details.get("max_chunk")
        if not isinstance(size, int) or not 0 < size < CHUNK:
            raise
    return await client.call(endpoint, "staging.get_chunk", path=path, offset=0, size=size), size


@router.get("/{endpoint}/files")
async def download(
    endpoint: str, session: Session, path: Annotated[str, Query(min_length=1)]
) -> Response:
    """The file at ``path`` on ``endpoint``, streamed chunk by chunk (``staging.get_chunk``)."""
    client = session.client
    try:
        info = await client.call(endpoint, "staging.stat", path=path)
        if info["type"] != "file":
            raise BadRequest(f"{path} is a {info['type']}, not a file")
        first, size = await _first_chunk(client, endpoint, path)
    except OrbitError as exc:
        return _failure(exc)
    except ValueError as exc:
        return _failure(BadRequest(str(exc)))

    async def body() -> AsyncIterator[bytes]:
        chunk = first
        while True:
            yield base64.b64decode(chunk["data"])
            if chunk["eof"] or not chunk["size"]:
                return
            offset = chunk["offset"] + chunk["size"]
            chunk = await client.call(
                endpoint, "staging.get_chunk", path=path, offset=offset, size=size
            )

    name = PurePosixPath(info["path"]).name or "download"
    headers = {
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
        "Content-Length": str(info["size"]),
        "Cache-Control": "no-store",
    }
    return StreamingResponse(body(), media_type="application/octet-stream", headers=headers)


async def _spool(request: Request, limit: int) -> tuple[IO[bytes], int, str]:
    """The request body in a temp file, with its size and SHA-256."""
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL)  # noqa: SIM115
    digest, size = hashlib.sha256(), 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            spool.close()
            raise PayloadTooLarge(f"uploads through the gateway are limited to {limit} bytes")
        digest.update(part)
        spool.write(part)
    spool.seek(0)
    return spool, size, digest.hexdigest()


@router.put("/{endpoint}/files")
async def upload(
    endpoint: str,
    request: Request,
    session: Session,
    path: Annotated[str, Query(min_length=1)],
    overwrite: bool = False,
) -> JSONResponse:
    """Store the request body at ``path`` on ``endpoint`` (``staging.put_*``); the reply is
    ``put_commit``'s: ``{"v": 1, "ok": true, "result": {"path", "size", "sha256"}}``."""
    client = session.client
    try:
        spool, size, sha = await _spool(request, request.app.state.settings.max_upload)
    except OrbitError as exc:
        return _failure(exc)
    try:
        with spool:
            up: dict[str, Any] = await client.call(
                endpoint,
                "staging.put_begin",
                path=path,
                size=size,
                sha256=sha,
                overwrite=overwrite,
            )
            step = min(CHUNK, int(up["max_chunk"]))
            have = [tuple(r) for r in up["received"]]
            for offset in range(0, size, step):
                end = min(size, offset + step)
                if any(a <= offset and end <= b for a, b in have):
                    continue  # resumed: the endpoint already has these bytes
                spool.seek(offset)
                data = base64.b64encode(spool.read(end - offset)).decode()
                await client.call(
                    endpoint,
                    "staging.put_chunk",
                    upload_id=up["upload_id"],
                    offset=offset,
                    data=data,
                )
            done = await client.call(endpoint, "staging.put_commit", upload_id=up["upload_id"])
    except OrbitError as exc:
        return _failure(exc)
    except ValueError as exc:
        return _failure(BadRequest(str(exc)))
    return reply_response(Reply(ok=True, result=done))


__all__ = ["router"]
