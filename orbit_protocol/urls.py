"""Broker URL lists: a ``url`` setting may name several nodes of one cluster, comma-separated.

``"amqp://ep1:pw@node1:5672/orbit,amqp://node2:5672,amqp://node3:5672"`` is three URLs; an
entry without user information, vhost path or query takes the first entry's, so the
password is written once. Connections try the entries in order and move to the next one
whenever a connection is lost or an attempt fails (see ``docs/cluster.md``).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def split_urls(value: str) -> list[str]:
    """The full URLs of a comma-separated list (raises ``ValueError`` when it is empty)."""
    entries = [part.strip() for part in value.split(",") if part.strip()]
    if not entries:
        raise ValueError("no broker URL given")
    first = urlsplit(entries[0])
    urls = [entries[0]]
    for entry in entries[1:]:
        parts = urlsplit(entry)
        netloc = parts.netloc
        if "@" not in netloc and "@" in first.netloc:
            netloc = f"{first.netloc.rsplit('@', 1)[0]}@{netloc}"
        path = parts.path or first.path
        query = parts.query or first.query
        urls.append(urlunsplit((parts.scheme, netloc, path, query, parts.fragment)))
    return urls


def mask_url(url: str) -> str:
    """``scheme://user:***@host:port/vhost``: no password, no query (certificate paths)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}:***@" if parts.username else ""
    return f"{parts.scheme}://{user}{parts.hostname or ''}{port}{parts.path}"


def mask_urls(value: str) -> str:
    """Every URL of a comma-separated list, masked, comma-separated."""
    return ",".join(mask_url(u) for u in split_urls(value))


__all__ = ["mask_url", "mask_urls", "split_urls"]
