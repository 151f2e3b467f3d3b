"""Definitions lint against a live broker: a provisioned vhost passes, broken grants fail."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from orbit_broker.lint import lint_broker
from orbit_broker.management import ManagementClient, Permissions
from orbit_broker.provision import ClientSpec, EndpointSpec, Provisioner, ProvisionSpec
from orbit_protocol import naming

pytestmark = pytest.mark.rabbit


async def provisioned(broker: Any, vhost: str) -> dict[str, str]:
    tag = vhost.removeprefix("test-")[:4]
    names = {"ep": f"ep-{tag}", "alice": f"alice-{tag}", "responder": f"resp-{tag}"}
    await Provisioner(broker.management, broker.amqp_url(), vhost).provision(
        ProvisionSpec(
            endpoints=[EndpointSpec(names["ep"], ["gpu"])],
            clients=[ClientSpec(names["alice"], [names["ep"]], ["gpu"])],
            responder_user=names["responder"],
        )
    )
    return names


def cli_lint(broker: Any, vhost: str) -> subprocess.CompletedProcess[str]:
    mgmt = broker.management_url.replace("://", f"://{broker.user}:{broker.password}@", 1)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "orbit_cli",
            "broker",
            "lint",
            "--management-url",
            mgmt,
            "--vhost",
            vhost,
        ],
        env=dict(os.environ) | {"COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_provisioned_vhost_passes_broken_grants_fail(broker: Any, vhost: str) -> None:
    m: ManagementClient = broker.management
    names = await provisioned(broker, vhost)
    try:
        assert lint_broker(m, vhost) == []
        ok = cli_lint(broker, vhost)
        assert ok.returncode == 0 and "no findings" in ok.stderr, ok.stdout + ok.stderr

        # break three things: a missing topic row, configure on shared objects, default exchange
        alice, ep = names["alice"], names["ep"]
        rows = m.get_topic_permissions(alice, vhost)
        m.clear_topic_permissions(alice, vhost)
        for exchange, row in rows.items():
            if exchange != naming.EVENT_EXCHANGE:
                m.set_topic_permission(alice, vhost, row)
        m.set_permissions(
            ep, vhost, Permissions(".*", r"^(orbit\.(replies|events)|amq\.default)$", ".*")
        )
        findings = lint_broker(m, vhost)
        got = {(f.rule, f.user, f.target) for f in findings}
        print("\n" + "\n".join(map(str, findings)))
        assert (("topic-permission", alice, naming.EVENT_EXCHANGE)) in got
        for shared in (naming.REQUEST_EXCHANGE, "orbit.dead", f"orbit.ep.{ep}", "orbit.pool.gpu"):
            assert ("configure-shared", ep, shared) in got
        assert ("default-exchange", ep, "amq.default") in got
        assert {f.user for f in findings} == {alice, ep}  # the responder stays clean
        bad = cli_lint(broker, vhost)
        assert bad.returncode == 1, bad.stdout + bad.stderr
        assert "default-exchange" in bad.stdout and "topic-permission" in bad.stdout
    finally:
        for name in names.values():
            m.delete_user(name)


async def test_tagged_tenant_is_a_finding(broker: Any, vhost: str) -> None:
    m: ManagementClient = broker.management
    names = await provisioned(broker, vhost)
    try:
        m.create_user(names["alice"], "x" * 24, ["management"])
        findings = lint_broker(m, vhost)
        assert [(f.rule, f.user) for f in findings] == [("tags", names["alice"])]
    finally:
        for name in names.values():
            m.delete_user(name)
