"""One user's connection to one IRI facility: an httpx client and the error mapping.

The token lives only inside this object (the client's default headers). Every message
built from a facility answer or a transport error is scrubbed of it before it leaves.
"""

from __future__ import annotations

import os
import ssl
from typing import Any

import httpx

from orbit_protocol import Conflict, InvalidArgs, NotAuthorized, NotFound, OrbitError, Unavailable

from .schema import Facility

MAX_DETAIL = 300


class FacilityApi:
    """Calls to one facility's IRI API with one token (thread-safe, like ``httpx.Client``)."""

    def __init__(self, site: str, facility: Facility, token: str, timeout: float) -> None:
        self.site = site
        self.facility = facility
        self._token = token
        scheme = "Bearer " if facility.auth_scheme == "bearer" else ""
        self._client = httpx.Client(
            base_url=facility.url + "/",
            headers={"Authorization": scheme + token, "Accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            verify=ssl.create_default_context(cafile=_expand(facility.ca_bundle)),
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()
        self._token = ""

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """One call; the decoded JSON answer (``None`` for 204), or the Orbit error for it."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._client.request(
                method, path.lstrip("/"), params=query, json=json, headers=headers
            )
        except httpx.TimeoutException:
            raise Unavailable(
                f"{self.facility.label} did not answer {method} /{path.lstrip('/')} in time",
                {"site": self.site},
            ) from None
        except httpx.HTTPError as exc:
            reason = self._scrub(str(exc)) or type(exc).__name__
            raise Unavailable(
                f"cannot reach {self.facility.label} at {self.facility.url}: {reason}",
                {"site": self.site},
            ) from None
        except RuntimeError:  # closed by a disconnect racing this call
            if not self._client.is_closed:
                raise
            raise NotAuthorized(
                f"disconnected from {self.site!r} during the call: connect again"
            ) from None
        if response.status_code >= 400:
            raise self._error(method, path, response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise Unavailable(
                f"{self.facility.label} answered {method} /{path.lstrip('/')} with something"
                " that is not JSON",
                {"site": self.site, "http_status": response.status_code},
            ) from None

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _error(self, method: str, path: str, response: httpx.Response) -> OrbitError:
        """A facility's HTTP error as an Orbit error (docs/protocol.md) a caller can act on."""
        status = response.status_code
        detail = _detail(response)
        detail = self._scrub(detail)[:MAX_DETAIL]
        where = f"{self.facility.label} {method} /{path.lstrip('/')}"
        message = f"{where}: HTTP {status}" + (f": {detail}" if detail else "")
        details: dict[str, Any] = {"site": self.site, "http_status": status}
        if detail:
            details["facility_detail"] = detail
        if status in (401, 403):
            return NotAuthorized(
                f"{message} (the token was refused: get a fresh one and call"
                f" iri_connect.connect for {self.site!r} again)",
                details,
            )
        if status == 404:
            return NotFound(message, details)
        if status == 409:
            return Conflict(message, details)
        if status in (400, 422):
            return InvalidArgs(message, details)
        if status == 429:
            retry = response.headers.get("Retry-After")
            return Unavailable(message + (f" (retry after {retry} s)" if retry else ""), details)
        if status >= 500:
            return Unavailable(message, details)
        return InvalidArgs(message, details)


def _expand(path: str | None) -> str | None:
    return os.path.expanduser(path) if path else None


def _detail(response: httpx.Response) -> str:
    """FastAPI's ``{"detail": ...}`` as one line, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip().replace("\n", " ")[:MAX_DETAIL]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):  # pydantic errors: loc + msg
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(x) for x in item.get("loc", []))
                parts.append(f"{loc}: {item.get('msg', '')}".strip(": "))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


__all__ = ["FacilityApi"]
