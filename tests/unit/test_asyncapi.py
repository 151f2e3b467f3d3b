"""The AsyncAPI 3.0 document: structure, resolvable references, real bodies validate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from typer.testing import CliRunner

from orbit_cli.app import app
from orbit_cli.commands.gateway import plugin_schemas
from orbit_protocol import ErrorCode, Event, Presence, Reply, Request
from orbit_protocol.asyncapi import build
from orbit_protocol.errors import NotFound

DOC_URI = "urn:orbit:asyncapi"
_ref = {"type": "object", "required": ["$ref"], "properties": {"$ref": {"type": "string"}}}
_message = {
    "type": "object",
    "required": ["name", "payload", "contentType"],
    "properties": {"payload": {"type": "object"}, "contentType": {"const": "application/json"}},
}
# The parts of the AsyncAPI 3.0.0 schema that this document uses (a structural subset).
ASYNCAPI_3_SUBSET: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["asyncapi", "info", "channels", "operations", "components"],
    "properties": {
        "asyncapi": {"const": "3.0.0"},
        "info": {"type": "object", "required": ["title", "version"]},
        "servers": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["host", "protocol"],
                "properties": {"protocol": {"enum": ["amqp", "amqps"]}},
            },
        },
        "channels": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["address", "messages"],
                "properties": {
                    "address": {"type": "string"},
                    "messages": {"type": "object", "additionalProperties": _message},
                    "parameters": {"type": "object"},
                    "bindings": {"type": "object", "required": ["amqp"]},
                },
            },
        },
        "operations": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["action", "channel"],
                "properties": {
                    "action": {"enum": ["send", "receive"]},
                    "channel": _ref,
                    "messages": {"type": "array", "items": _ref},
                    "reply": {"type": "object", "required": ["channel", "messages"]},
                },
            },
        },
        "components": {
            "type": "object",
            "properties": {
                "schemas": {"type": "object", "propertyNames": {"pattern": r"^[a-zA-Z0-9\.\-_]+$"}}
            },
        },
    },
}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    from tests.testkit.plugin import KitPlugin

    plugins = plugin_schemas()
    plugins["testkit"] = {
        "operations": {
            op: {"doc": s.doc, **s.json_schemas()} for op, s in KitPlugin.operations().items()
        }
    }
    return build(plugins, "amqps://user:secret@broker.example:5671/orbit")


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def validator(doc: dict[str, Any], pointer: str) -> jsonschema.Draft202012Validator:
    registry: Registry[Any] = Registry().with_resource(
        DOC_URI, Resource.from_contents(doc, default_specification=DRAFT202012)
    )
    return jsonschema.Draft202012Validator({"$ref": f"{DOC_URI}#{pointer}"}, registry=registry)


def test_structure(doc: dict[str, Any]) -> None:
    jsonschema.validate(doc, ASYNCAPI_3_SUBSET)
    assert doc["servers"]["broker"] == {
        "host": "broker.example:5671",
        "protocol": "amqps",
        "pathname": "/orbit",
    }
    assert "secret" not in json.dumps(doc)
    assert {"requests", "replies", "events", "presence"} <= set(doc["channels"])
    ping = doc["operations"]["call.orbit.ping"]
    assert ping["action"] == "send" and ping["reply"]["channel"] == {"$ref": "#/channels/replies"}
    for plugin in ("orbit", "sysinfo", "testkit"):
        assert any(op.startswith(f"call.{plugin}.") for op in doc["operations"]), plugin


OFFICIAL_SCHEMA = Path(__file__).parent.parent / "fixtures" / "asyncapi-3.0.0.schema.json"


def test_valid_against_the_official_asyncapi_3_schema(doc: dict[str, Any]) -> None:
    """The published AsyncAPI 3.0.0 JSON Schema (npm @asyncapi/specs 6.11.1,
    ``schemas/3.0.0-without-$id.json``, Apache-2.0, vendored under tests/fixtures)."""
    schema = json.loads(OFFICIAL_SCHEMA.read_text())
    assert schema["title"] == "AsyncAPI 3.0.0 schema."
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.absolute_path)
    )
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in errors[:10]
    )
    broken = json.loads(json.dumps(doc))
    broken["operations"]["call.orbit.ping"]["action"] = "publish"  # AsyncAPI 2 wording
    assert not jsonschema.Draft7Validator(schema).is_valid(broken)


def test_every_reference_resolves(doc: dict[str, Any]) -> None:
    for ref in refs(doc):
        assert ref.startswith("#/"), ref
        node: Any = doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]


def test_real_bodies_validate(doc: dict[str, Any]) -> None:
    request = Request(plugin="testkit", method="echo", args={"value": [1], "delay": 0}).to_bytes()
    echo = "/channels/requests/messages/testkit.echo.request/payload"
    validator(doc, echo).validate(json.loads(request))
    bad = json.loads(Request(plugin="testkit", method="echo", args={"delay": -1}).to_bytes())
    assert not validator(doc, echo).is_valid(bad)
    reply = "/channels/replies/messages/testkit.echo.reply/payload"
    validator(doc, reply).validate(json.loads(Reply.success({"value": 1}).to_bytes()))
    failed = Reply.failure(NotFound("gone"))
    assert failed.error is not None and failed.error.code == ErrorCode.NOT_FOUND
    validator(doc, reply).validate(json.loads(failed.to_bytes()))
    presence = Presence(state="online", version="1", host="h", plugins={"kit": "1"})
    event = Event(endpoint="ep1", plugin="orbit", topic="presence", data=presence.model_dump())
    validator(doc, "/channels/presence/messages/presence/payload").validate(
        json.loads(event.to_bytes())
    )


def test_cli_prints_the_document() -> None:
    result = CliRunner().invoke(app, ["broker", "asyncapi", "--url", "amqp://u:p@h:5672/orbit"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["asyncapi"] == "3.0.0" and "call.sysinfo.metrics" in printed["operations"]
