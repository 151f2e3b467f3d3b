"""The IRI plugins without a broker: config file, error mapping, token hygiene, poller."""

from __future__ import annotations

import json
import secrets
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orbit_broker.ports import free_port
from orbit_broker.tls import CertificateAuthority
from orbit_plugins.base import Call
from orbit_plugins.iri.api import FacilityApi
from orbit_plugins.iri.config import ENV, EXAMPLE, config_path, load_facilities
from orbit_plugins.iri.plugin import IriConnectPlugin, IriPlugin
from orbit_plugins.iri.schema import ConnectArgs, Facility
from orbit_plugins.testing import FakeContext
from orbit_protocol import InvalidArgs, NotAuthorized, NotFound, Unavailable

from ..fakes.iri_api import FakeIri


@pytest.fixture
def token() -> str:
    return "iri-" + secrets.token_hex(16)


@pytest.fixture
def fake(token: str) -> Iterator[FakeIri]:
    with FakeIri(token, queued_for=0.0, active_for=0.0) as service:
        yield service


def write_config(path: Path, fake: FakeIri) -> Path:
    down = f"http://127.0.0.1:{free_port()}/api/v1"  # nobody listens there
    path.write_text(
        json.dumps(
            {
                "facilities": {
                    "nersc": {"label": "NERSC", "url": fake.url + "/", "auth": "test"},
                    "olcf": {"label": "OLCF", "url": down},
                }
            }
        )
    )
    return path


async def plugins(tmp_path: Path, config: Path) -> tuple[IriConnectPlugin, IriPlugin, FakeContext]:
    connect = IriConnectPlugin({"config": str(config), "timeout": 5})
    iri = IriPlugin({"poll_interval": 0.1})
    ctx = FakeContext(tmp_path / "state" / "plugins" / "iri")
    await connect.setup(FakeContext(tmp_path / "state" / "plugins" / "iri_connect"))
    await iri.setup(ctx)
    return connect, iri, ctx


def op(plugin: Any, name: str, call: Call, **args: Any) -> Any:
    spec = plugin.operations()[name]
    params = [call if kind == "call" else spec.args_model(**args) for kind in spec.params]
    result = spec.func(plugin, *params)
    return spec.result_adapter.dump_python(result, mode="json")


def test_the_shipped_example_and_the_config_search_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    facilities = load_facilities(EXAMPLE)
    assert {"nersc", "olcf"} <= set(facilities)
    assert facilities["nersc"].url == "https://api.iri.nersc.gov/api/v1"
    monkeypatch.delenv(ENV, raising=False)
    assert config_path(None) == EXAMPLE
    monkeypatch.setenv(ENV, str(tmp_path / "env.toml"))
    assert config_path(None) == tmp_path / "env.toml"
    assert config_path(str(tmp_path / "set.json")) == tmp_path / "set.json"


@pytest.mark.parametrize(
    ("text", "suffix", "reason"),
    [
        ("[facilities.NERSC]\nlabel='x'\nurl='http://x'\n", ".toml", "site name 'NERSC'"),
        ("[facilities.nersc]\nlabel='x'\n", ".toml", "url"),
        ("{not json", ".json", "not valid JSON"),
        ('["a list"]', ".json", "no \\[facilities"),
        ("[other]\n", ".toml", "no \\[facilities"),
        (
            "[facilities.a]\nlabel='x'\nurl='http://x'\nca_bundle='/nope.pem'\n",
            ".toml",
            "no CA file",
        ),
    ],
)
async def test_a_bad_config_makes_the_plugin_unavailable(
    tmp_path: Path, text: str, suffix: str, reason: str
) -> None:
    path = tmp_path / f"f{suffix}"
    path.write_text(text)
    with pytest.raises(Unavailable, match=reason):
        await IriConnectPlugin({"config": str(path)}).setup(FakeContext(tmp_path / "s"))
    with pytest.raises(Unavailable, match="cannot read"):
        await IriConnectPlugin({"config": str(tmp_path / "missing.toml")}).setup(
            FakeContext(tmp_path / "s")
        )


async def test_connect_checks_the_token_and_keeps_it_out_of_errors(
    tmp_path: Path, fake: FakeIri, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    connect, iri, _ = await plugins(tmp_path, write_config(tmp_path / "f.json", fake))
    alice = Call("r1", "alice", "ep")
    listed = op(connect, "list_facilities", alice)
    assert [(f["site"], f["connected"]) for f in listed["facilities"]] == [
        ("nersc", False),
        ("olcf", False),
    ]
    with pytest.raises(NotAuthorized, match=r"iri_connect\.connect"):
        op(iri, "list_projects", alice, site="nersc")
    with pytest.raises(NotFound, match="configured: nersc, olcf"):
        op(connect, "connect", alice, site="alcf", token=token)
    wrong = token[::-1]
    with pytest.raises(NotAuthorized, match="HTTP 401") as info:
        op(connect, "connect", alice, site="nersc", token=wrong)
    assert wrong not in str(info.value) and wrong not in json.dumps(info.value.details)
    with pytest.raises(Unavailable, match="cannot reach OLCF"):
        op(connect, "connect", alice, site="olcf", token=token)
    assert op(connect, "get_status", alice, site="nersc")["connected"] is False

    assert op(connect, "connect", alice, site="nersc", token=token)["status"] == "connected"
    assert op(connect, "connect", alice, site="nersc", token=token)["status"] == "token_updated"
    assert op(connect, "get_status", alice, site="nersc")["connected"] is True
    bob = Call("r2", "bob", "ep")  # tokens are per caller
    with pytest.raises(NotAuthorized):
        op(iri, "list_projects", bob, site="nersc")
    assert op(iri, "list_projects", alice, site="nersc")["items"][0]["id"] == "m1234"
    assert token not in repr(ConnectArgs(site="nersc", token=token))
    assert token not in caplog.text
    assert op(connect, "disconnect", alice, site="nersc")["site"] == "nersc"
    with pytest.raises(NotFound, match="not connected"):
        op(connect, "disconnect", alice, site="nersc")


async def test_http_errors_map_to_orbit_codes(tmp_path: Path, fake: FakeIri, token: str) -> None:
    connect, iri, _ = await plugins(tmp_path, write_config(tmp_path / "f.json", fake))
    call = Call("r1", "alice", "ep")
    op(connect, "connect", call, site="nersc", token=token)
    with pytest.raises(NotFound, match="Item not found"):
        op(iri, "get_resource", call, site="nersc", resource_id="nope")
    with pytest.raises(Unavailable, match="HTTP 500"):
        op(iri, "list_jobs", call, site="nersc", resource_id="broken")
    with pytest.raises(NotFound, match="job 42 not found"):
        op(iri, "get_job_status", call, site="nersc", resource_id="perlmutter-cpu", job_id="42")
    api = FacilityApi("nersc", Facility(label="NERSC", url=fake.url), token, timeout=5)
    with pytest.raises(InvalidArgs, match=r"body\.colour: Extra inputs") as info:
        api.request("POST", "compute/job/perlmutter-cpu", json={"colour": "red"})
    assert info.value.details["http_status"] == 422
    with pytest.raises(ValueError):  # our own JobSpec refuses the same before any HTTP call
        iri.operations()["submit_job"].args_model(
            site="nersc", resource_id="perlmutter-cpu", job_spec={"colour": "red"}
        )


def test_a_facility_echoing_the_token_is_scrubbed(token: str) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"detail": f"bad token {request.headers['authorization']}"})

    api = FacilityApi("nersc", Facility(label="NERSC", url="http://x/api/v1"), token, timeout=5)
    api._client = httpx.Client(
        base_url="http://x/api/v1/",
        headers={"Authorization": f"Bearer {token}"},
        transport=httpx.MockTransport(echo),
    )
    with pytest.raises(NotAuthorized) as info:
        api.request("GET", "account/projects")
    assert token not in str(info.value) and token not in json.dumps(info.value.details)
    assert "Bearer ***" in info.value.message


async def test_a_facility_answering_odd_shapes_is_unavailable(
    tmp_path: Path, fake: FakeIri, token: str
) -> None:
    """Not a list where a list belongs, not an object for a resource: UNAVAILABLE, not INTERNAL."""
    answers: dict[str, Any] = {
        "/api/v1/account/projects": {"projects": []},
        "/api/v1/status/resources": [1, 2],
        "/api/v1/status/resources/cfs": ["cfs"],
        "/api/v1/compute/status/cpu": "busy",
    }

    def odd(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=answers[request.url.path])

    connect, iri, _ = await plugins(tmp_path, write_config(tmp_path / "f.json", fake))
    call = Call("r1", "alice", "ep")
    op(connect, "connect", call, site="nersc", token=token)
    api = iri.hub.connection("alice", "nersc").api
    api._client = httpx.Client(base_url=fake.url + "/", transport=httpx.MockTransport(odd))
    for name, args in [
        ("list_projects", {}),
        ("list_resources", {}),
        ("get_resource", {"resource_id": "cfs"}),
        ("list_jobs", {"resource_id": "cpu"}),
    ]:
        with pytest.raises(Unavailable, match="IRI site 'nersc' answered") as info:
            op(iri, name, call, site="nersc", **args)
        assert info.value.details == {"site": "nersc"}


async def test_the_poller_reports_submitted_jobs_until_they_end(
    tmp_path: Path, fake: FakeIri, token: str
) -> None:
    connect, iri, ctx = await plugins(tmp_path, write_config(tmp_path / "f.json", fake))
    call = Call("req-1", "alice", "ep")
    op(connect, "connect", call, site="nersc", token=token)
    spec = {"executable": "/bin/false", "name": "fails"}
    job = op(iri, "submit_job", call, site="nersc", resource_id="perlmutter-cpu", job_spec=spec)
    assert fake.requests[-1][2]["Idempotency-Key"] == "req-1"
    assert fake.requests[-1][3] == spec  # only what the caller set goes to the facility
    assert op(connect, "get_status", call, site="nersc")["watched_jobs"] == 1
    iri._poll_once()
    assert [(t, d["job_id"], d["state"], d["exit_code"]) for t, d in ctx.events] == [
        ("job_status", job["id"], "failed", 1)
    ]
    assert ctx.events[0][1]["name"] == "fails" and ctx.events[0][1]["user"] == "alice"
    iri._poll_once()  # a final job is no longer followed
    assert len(ctx.events) == 1
    assert op(connect, "get_status", call, site="nersc")["watched_jobs"] == 0


def test_numeric_ids_from_a_command_line_are_taken_as_strings() -> None:
    args = IriPlugin.operations()["get_job_status"].args_model
    ref = args.model_validate({"site": "nersc", "resource_id": "cpu", "job_id": 123})
    assert ref.model_dump()["job_id"] == "123"


async def test_a_poller_error_is_logged_once_and_shown_in_the_status(
    tmp_path: Path, fake: FakeIri, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    connect, iri, ctx = await plugins(tmp_path, write_config(tmp_path / "f.json", fake))
    call = Call("req-1", "alice", "ep")
    op(connect, "connect", call, site="nersc", token=token)
    op(iri, "submit_job", call, site="nersc", resource_id="perlmutter-cpu", job_spec={})
    fake.token = "expired"
    with caplog.at_level("WARNING"):
        for _ in range(3):
            iri._poll_once()
    polling = [r.getMessage() for r in caplog.records if "polling IRI job" in r.getMessage()]
    assert len(polling) == 1, polling  # three failed rounds, one warning
    assert "HTTP 401" in caplog.text and token not in caplog.text
    status = op(connect, "get_status", call, site="nersc")
    assert "token was refused" in status["last_error"] and status["watched_jobs"] == 1
    assert ctx.events == []


async def test_get_job_status_can_start_following_a_job(
    tmp_path: Path, fake: FakeIri, token: str
) -> None:
    connect, iri, ctx = await plugins(tmp_path, write_config(tmp_path / "f.json", fake))
    call = Call("req-1", "alice", "ep")
    op(connect, "connect", call, site="nersc", token=token)
    fake.queued_for = float("inf")
    job = fake.submit("perlmutter-cpu", {"name": "older"})  # e.g. before a restart
    ref = {"site": "nersc", "resource_id": "perlmutter-cpu", "job_id": job["id"]}
    assert op(iri, "get_job_status", call, **ref)["status"]["state"] == "queued"
    assert op(connect, "get_status", call, site="nersc")["watched_jobs"] == 0
    op(iri, "get_job_status", call, follow=True, **ref)
    assert op(connect, "get_status", call, site="nersc")["watched_jobs"] == 1
    iri._poll_once()
    assert ctx.events == []  # no change yet
    fake.queued_for = 0.0
    iri._poll_once()
    assert [(d["name"], d["state"]) for _, d in ctx.events] == [("older", "completed")]


def test_a_call_on_a_closed_connection_says_disconnected(fake: FakeIri, token: str) -> None:
    api = FacilityApi("nersc", Facility(label="NERSC", url=fake.url), token, timeout=5)
    api.close()
    with pytest.raises(NotAuthorized, match="disconnected from 'nersc'"):
        api.request("GET", "account/projects")


def test_both_plugins_load_by_entry_point_name_with_core_dependencies_only() -> None:
    from orbit_endpoint import registry

    assert registry.available()["iri"] == "orbit_plugins.iri.plugin:IriPlugin"
    assert registry.available()["iri_connect"] == "orbit_plugins.iri.plugin:IriConnectPlugin"
    loaded = registry.load(["iri_connect", "iri"], {"iri": {"poll_interval": 1}})
    assert {name: slot.error for name, slot in loaded.items()} == {"iri_connect": None, "iri": None}
    blocked = (
        "import sys\nfor m in ('globus_sdk', 'psij', 'cloudpickle'):\n    sys.modules[m] = None\n"
    )
    code = blocked + "import orbit_plugins.iri.plugin as p; print(p.IriPlugin.name)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "iri"), done.stderr


def test_https_is_verified_against_the_system_roots_or_the_facility_ca(
    tmp_path: Path, token: str
) -> None:
    ca = CertificateAuthority.create(tmp_path / "ca")
    pair = ca.issue_server()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(pair.cert, pair.key)
    with FakeIri(token, tls=server_tls) as fake:
        assert fake.url.startswith("https://")
        unknown = FacilityApi("nersc", Facility(label="NERSC", url=fake.url), token, timeout=5)
        with pytest.raises(Unavailable, match="CERTIFICATE_VERIFY_FAILED"):
            unknown.request("GET", "account/projects")
        trusted = Facility(label="NERSC", url=fake.url, ca_bundle=str(ca.cert))
        api = FacilityApi("nersc", trusted, token, timeout=5)
        assert api.request("GET", "account/projects")[0]["id"] == "m1234"
