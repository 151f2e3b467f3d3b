"""docker-compose.yml and the broker definitions it loads (no Docker engine here: static checks)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from orbit_protocol import topology

ROOT = Path(__file__).resolve().parents[2]
TOPIC_EXCHANGES = {"orbit.requests", "orbit.events", "orbit.replies"}


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return doc


def definitions() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((ROOT / "docker" / "definitions.json").read_text())
    return doc


def test_compose_structure() -> None:
    doc = compose()
    services = doc["services"]
    assert set(services) >= {"rabbitmq", "responder", "endpoint-demo"}
    assert services["rabbitmq"]["image"] == "rabbitmq:3.13-management"
    declared_volumes = set(doc.get("volumes", {}))
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        if "build" in service:
            assert (ROOT / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        for dep, cond in service.get("depends_on", {}).items():
            assert dep in services and cond["condition"] in {"service_started", "service_healthy"}
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), source
            else:
                assert source in declared_volumes, source
        for port in service.get("ports", []):
            assert re.fullmatch(r"127\.0\.0\.1:\d+:\d+", port), "publish on loopback only"


def test_definitions_match_the_topology() -> None:
    defs = definitions()
    wanted = topology.core() + topology.endpoint("demo")
    queues = {q["name"]: q["arguments"] for q in defs["queues"]}
    assert queues == {q.name: q.args for q in wanted.queues}
    bindings = {(b["source"], b["destination"], b["routing_key"]) for b in defs["bindings"]}
    assert bindings == {(b.exchange, b.queue, b.routing_key) for b in wanted.bindings}
    assert {e["name"]: e["type"] for e in defs["exchanges"]} == {
        e.name: e.kind for e in wanted.exchanges
    }


def test_definitions_lint() -> None:
    """Every user has topic rows on every topic exchange; only the admin configures shared
    objects; nobody but the admin may write to the default exchange."""
    defs = definitions()
    admins = {u["name"] for u in defs["users"] if "administrator" in u["tags"]}
    rows: dict[str, set[str]] = {}
    for row in defs["topic_permissions"]:
        rows.setdefault(row["user"], set()).add(row["exchange"])
    shared = [
        "orbit.requests",
        "orbit.replies",
        "orbit.events",
        "orbit.dlx",
        "orbit.dead",
        "orbit.ep.demo",
    ]
    for perm in defs["permissions"]:
        user = perm["user"]
        if user in admins:
            continue
        assert rows.get(user) == TOPIC_EXCHANGES, user
        assert not any(re.search(perm["configure"], name) for name in shared), user
        assert not re.search(perm["write"], "amq.default"), user


def test_definitions_pass_the_broker_lint() -> None:
    """The same rules ``orbit broker lint`` applies to a live broker (orbit_broker.lint)."""
    from orbit_broker.lint import lint_definitions

    doc = definitions()
    assert lint_definitions(doc, "orbit") == []
    broken = json.loads(json.dumps(doc))
    for perm in broken["permissions"]:
        if perm["user"] == "alice":
            perm["write"] = ".*"
    rules = {(f.rule, f.user) for f in lint_definitions(broken, "orbit")}
    assert ("default-exchange", "alice") in rules


def test_the_image_copies_every_package_it_installs() -> None:
    """A package missing from the Dockerfile's COPY lines would install as a broken wheel."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = set(project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (orbit_\w+) \1$", dockerfile, re.M))
    assert copied == packages
