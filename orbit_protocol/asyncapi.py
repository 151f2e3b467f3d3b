"""AsyncAPI 3.0 document of protocol v1: channels, request/reply operations, events, presence.

Pure function of the topology names (``orbit_protocol``) and the plugin schemas passed
in (``{plugin: {"version", "description", "operations": {op: {"doc", "args", "result"}}}}``,
the shape of ``orbit.describe``), so ``orbit_broker`` needs no plugin imports.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urlsplit

from orbit_protocol import ErrorInfo, Event, Presence, Request, naming
from orbit_protocol.version import PROTOCOL_VERSION

REF_PREFIX = "#/$defs/"
COMPONENTS = "#/components/schemas/"


def _hoist(schema: dict[str, Any], prefix: str, into: dict[str, Any]) -> dict[str, Any]:
    """Move ``$defs`` into ``components.schemas`` (as ``prefix+name``) and rewrite ``$ref``s."""
    schema = copy.deepcopy(schema)
    defs = schema.pop("$defs", {})

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(REF_PREFIX):
                node["$ref"] = COMPONENTS + prefix + ref[len(REF_PREFIX) :]
            for value in node.values():
                rewrite(value)
        elif isinstance(node, list):
            for value in node:
                rewrite(value)
        return node

    for name, sub in defs.items():
        into[prefix + name] = rewrite(sub)
    rewrite(schema)
    return schema


def _amqp_channel(exchange: str) -> dict[str, Any]:
    return {
        "amqp": {
            "is": "routingKey",
            "exchange": {"name": exchange, "type": "topic", "durable": True, "autoDelete": False},
        }
    }


def _param(description: str) -> dict[str, Any]:
    return {"description": description}


def _message(name: str, payload: dict[str, Any], summary: str, kind: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": name,
        "title": name,
        "summary": summary,
        "contentType": "application/json",
        "payload": payload,
        "bindings": {"amqp": {"messageType": kind}},
    }
    if kind != "event":
        message["correlationId"] = {"location": "$message.header#/correlation_id"}
    return message


def _reply_schema(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "oneOf": [
            {
                "type": "object",
                "required": ["v", "ok", "result"],
                "properties": {
                    "v": {"const": PROTOCOL_VERSION},
                    "ok": {"const": True},
                    "result": result,
                },
            },
            {"$ref": COMPONENTS + "ErrorReply"},
        ]
    }


def _request_schema(plugin: str, method: str, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["v", "plugin", "method", "args"],
        "additionalProperties": False,
        "properties": {
            "v": {"const": PROTOCOL_VERSION},
            "plugin": {"const": plugin},
            "method": {"const": method},
            "args": args,
        },
    }


def _base_components() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for name, model in (
        ("Request", Request),
        ("Event", Event),
        ("Presence", Presence),
        ("ErrorInfo", ErrorInfo),
    ):
        schemas[name] = _hoist(model.model_json_schema(), f"{name}.", schemas)
    schemas["ErrorReply"] = {
        "type": "object",
        "required": ["v", "ok", "error"],
        "properties": {
            "v": {"const": PROTOCOL_VERSION},
            "ok": {"const": False},
            "error": {"$ref": COMPONENTS + "ErrorInfo"},
        },
    }
    schemas["PresenceEvent"] = {
        "allOf": [{"$ref": COMPONENTS + "Event"}],
        "properties": {
            "plugin": {"const": naming.BUILTIN_PLUGIN},
            "topic": {"const": naming.PRESENCE_TOPIC},
            "data": {"$ref": COMPONENTS + "Presence"},
        },
    }
    return schemas


def _channels() -> dict[str, Any]:
    return {
        "requests": {
            "address": "{endpoint}",
            "title": naming.REQUEST_EXCHANGE,
            "description": "Requests, routed by endpoint name (or pool.<pool>).",
            "parameters": {"endpoint": _param("endpoint name, or pool.<pool>")},
            "messages": {},
            "bindings": _amqp_channel(naming.REQUEST_EXCHANGE),
        },
        "replies": {
            "address": "{replyQueue}",
            "title": naming.REPLY_EXCHANGE,
            "description": "Replies, routed by the client's reply queue name (reply_to).",
            "parameters": {"replyQueue": _param("orbit.reply.<user>.<random>")},
            "messages": {},
            "bindings": _amqp_channel(naming.REPLY_EXCHANGE),
        },
        "events": {
            "address": "{endpoint}.{plugin}.{topic}",
            "title": naming.EVENT_EXCHANGE,
            "description": "Plugin events.",
            "parameters": {
                "endpoint": _param("endpoint"),
                "plugin": _param("plugin"),
                "topic": _param("topic"),
            },
            "messages": {
                "event": _message(
                    "event", {"$ref": COMPONENTS + "Event"}, "A plugin event", "event"
                )
            },
            "bindings": _amqp_channel(naming.EVENT_EXCHANGE),
        },
        "presence": {
            "address": "{endpoint}.orbit.presence",
            "title": naming.EVENT_EXCHANGE,
            "description": "Presence: on start, every heartbeat and on clean stop.",
            "parameters": {"endpoint": _param("endpoint")},
            "messages": {
                "presence": _message(
                    "presence", {"$ref": COMPONENTS + "PresenceEvent"}, "Endpoint presence", "event"
                )
            },
            "bindings": _amqp_channel(naming.EVENT_EXCHANGE),
        },
    }


def _add_operation(doc: dict[str, Any], plugin: str, op: str, spec: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    key = f"{plugin}.{op}"
    args = _hoist(spec.get("args", {"type": "object"}), f"{key}.args.", schemas)
    result = _hoist(spec.get("result", {}), f"{key}.result.", schemas)
    channels = doc["channels"]
    channels["requests"]["messages"][f"{key}.request"] = _message(
        f"{key}.request", _request_schema(plugin, op, args), spec.get("doc") or key, key
    )
    channels["replies"]["messages"][f"{key}.reply"] = _message(
        f"{key}.reply", _reply_schema(result), f"Reply to {key}", "reply"
    )
    doc["operations"][f"call.{key}"] = {
        "action": "send",
        "title": key,
        "summary": (spec.get("doc") or key).strip().splitlines()[0],
        "channel": {"$ref": "#/channels/requests"},
        "messages": [{"$ref": f"#/channels/requests/messages/{key}.request"}],
        "reply": {
            "address": {"location": "$message.header#/reply_to"},
            "channel": {"$ref": "#/channels/replies"},
            "messages": [{"$ref": f"#/channels/replies/messages/{key}.reply"}],
        },
    }


def build(plugins: dict[str, Any], url: str | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document for these plugins (always including ``orbit``'s own)."""
    doc: dict[str, Any] = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Orbit protocol",
            "version": str(PROTOCOL_VERSION),
            "description": "Calls to plugins on HPC endpoints, events and presence, over AMQP.",
        },
        "defaultContentType": "application/json",
        "channels": _channels(),
        "operations": {
            "receiveEvents": {"action": "receive", "channel": {"$ref": "#/channels/events"}},
            "receivePresence": {"action": "receive", "channel": {"$ref": "#/channels/presence"}},
        },
        "components": {"schemas": _base_components()},
    }
    if url:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
        doc["servers"] = {
            "broker": {
                "host": f"{parts.hostname}{port}",
                "protocol": "amqps" if parts.scheme == "amqps" else "amqp",
                "pathname": parts.path or "/",
            }
        }
    for plugin, info in sorted(plugins.items()):
        for op, spec in sorted((info.get("operations") or {}).items()):
            _add_operation(doc, plugin, op, spec)
    return doc


__all__ = ["build"]
