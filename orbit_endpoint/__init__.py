"""Orbit endpoint: the HPC-side service that consumes its request queue and runs plugins.

Layering: imports ``orbit_protocol`` and ``orbit_plugins`` (the plugin contract and,
lazily through entry points, the plugins). See ``README.md`` here for the call chain,
acknowledgement rules and shutdown order.
"""

from .runtime import Endpoint
from .settings import EndpointSettings

__all__ = ["Endpoint", "EndpointSettings"]
