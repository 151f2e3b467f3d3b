"""HTTP routes from the feature packages, found like plugins: by entry point.

A distribution adds routes to the gateway with an entry point in the group ``orbit.gateway``
whose value is a FastAPI ``APIRouter``::

    [project.entry-points."orbit.gateway"]
    myplugin = "my_package.web:router"

The routes run as the logged-in user: take the caller's session with the dependency
:func:`orbit_gateway.auth.current_session` and answer with
:func:`orbit_gateway.api.reply_response` (``docs/plugins/authoring.md``). A broken entry
point is logged and left out; the gateway starts without it.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from fastapi import APIRouter

ROUTE_GROUP = "orbit.gateway"
log = logging.getLogger(__name__)


def discover() -> dict[str, APIRouter]:
    """Entry point name → its router."""
    found: dict[str, APIRouter] = {}
    for ep in entry_points(group=ROUTE_GROUP):
        try:
            router = ep.load()
            if not isinstance(router, APIRouter):
                raise TypeError(f"{ep.value} is a {type(router).__name__}, not an APIRouter")
        except Exception as exc:
            log.warning("gateway routes %s (%s) not loaded: %s", ep.name, ep.value, exc)
            continue
        found[ep.name] = router
    return found


__all__ = ["ROUTE_GROUP", "discover"]
