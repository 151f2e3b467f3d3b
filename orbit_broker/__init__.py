"""Orbit broker side: the private local node, topology, provisioning, dead-letter responder.

Layering: imports ``orbit_protocol`` (names and topology values) and ``orbit_client``;
never ``orbit_endpoint``. The SSE gateway and Explorer UI will live in ``gateway/``.
"""
