"""Explorer pages come from the feature packages, found like plugins: by entry point.

A distribution adds a page for its plugin ``NAME`` with an entry point in the group
``orbit.explorer`` whose value is a package holding ``page.js``::

    [project.entry-points."orbit.explorer"]
    myplugin = "my_package"          # serves my_package/page.js as /pages/myplugin.js

``page.js`` is an ES module whose default export takes the page context and returns DOM
nodes; it may import the Explorer's helpers as ``../ui.js`` and ``../forms.js``
(``docs/plugins/authoring.md``). Plugins without a page get the generic schema forms.
"""

from __future__ import annotations

import logging
from functools import cache
from importlib.metadata import entry_points
from importlib.resources import files
from importlib.resources.abc import Traversable

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

PAGE_GROUP = "orbit.explorer"
PAGE_FILE = "page.js"
log = logging.getLogger(__name__)
router = APIRouter()


@cache
def discover() -> dict[str, Traversable]:
    """Plugin name → its ``page.js``; a broken entry point is logged and left out."""
    found: dict[str, Traversable] = {}
    for ep in entry_points(group=PAGE_GROUP):
        try:
            page = files(ep.value) / PAGE_FILE
            if not page.is_file():
                raise FileNotFoundError(f"{ep.value} has no {PAGE_FILE}")
        except Exception as exc:
            log.warning("Explorer page %s (%s) not loaded: %s", ep.name, ep.value, exc)
            continue
        found[ep.name] = page
    return found


@router.get("/api/pages")
async def pages() -> list[str]:
    """Plugins that have a dedicated Explorer page."""
    return sorted(discover())


@router.get("/pages/{name}.js", include_in_schema=False)
async def page(name: str) -> Response:
    found = discover().get(name)
    if found is None:
        raise HTTPException(404, f"no Explorer page for plugin {name!r}")
    return Response(found.read_bytes(), media_type="text/javascript")


__all__ = ["PAGE_GROUP", "discover", "router"]
