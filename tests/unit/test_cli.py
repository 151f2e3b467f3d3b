"""The ``orbit`` CLI without a broker: help texts, argument parsing, error rendering."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from orbit_cli import parsing, profile, session
from orbit_cli.app import app
from orbit_cli.errors import UsageError
from orbit_cli.options import STATE
from orbit_protocol import (
    AuthenticationFailed,
    BrokerError,
    EndpointOffline,
    InvalidArgs,
    NotAuthorized,
)

runner = CliRunner()

COMMANDS = [
    [],
    ["broker"],
    ["broker", "up"],
    ["broker", "down"],
    ["broker", "status"],
    ["broker", "provision"],
    ["broker", "grant"],
    ["broker", "revoke"],
    ["broker", "serve"],
    ["endpoint"],
    ["endpoint", "start"],
    ["endpoint", "stop"],
    ["endpoint", "status"],
    ["endpoints"],
    ["call"],
    ["events"],
    ["sysinfo"],
    ["describe"],
    ["plugins"],
    ["plugins", "list"],
]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No real profile, no ORBIT_* variables from the developer's shell."""
    for key in list(os.environ):
        if key.startswith("ORBIT_"):
            monkeypatch.delenv(key)
    path = tmp_path / "profile.json"
    monkeypatch.setenv("ORBIT_PROFILE", str(path))
    monkeypatch.setattr(STATE, "debug", False)
    return path


def fake_session(monkeypatch: pytest.MonkeyPatch, outcome: Any) -> list[dict[str, Any]]:
    """Replace the broker session: return ``outcome`` or raise it."""
    seen: list[dict[str, Any]] = []

    def run(func: Any, *, url: str | None = None, timeout: float | None = None) -> Any:
        seen.append({"url": url, "timeout": timeout})
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    monkeypatch.setattr(session, "run", run)
    return seen


# -- help -----------------------------------------------------------------------------------


@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: " ".join(w) or "orbit")
def test_help_everywhere(words: list[str]) -> None:
    result = runner.invoke(app, [*words, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.stdout


@pytest.mark.parametrize(
    "words",
    [["call"], ["events"], ["sysinfo"], ["endpoints"], ["broker", "up"], ["endpoint", "start"]],
)
def test_help_has_examples(words: list[str]) -> None:
    result = runner.invoke(app, [*words, "--help"], env={"COLUMNS": "200"})
    assert "Examples" in result.stdout
    assert "orbit " + words[0] in result.stdout


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("orbit ") and "protocol v1" in result.stdout


# -- key=value parsing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", 42),
        ("4.5", 4.5),
        ("true", True),
        ("null", None),
        ('["cpu","memory"]', ["cpu", "memory"]),
        ('{"a": 1}', {"a": 1}),
        ("hello", "hello"),
        ("", ""),
        ("a=b", "a=b"),
        ('"42"', "42"),
    ],
)
def test_parse_value(text: str, value: Any) -> None:
    assert parsing.parse_value(text) == value


def test_parse_pairs_splits_on_first_equals() -> None:
    assert parsing.parse_pairs(["a=1", "b=x=y", "c="]) == {"a": 1, "b": "x=y", "c": ""}


@pytest.mark.parametrize("bad", ["novalue", "=1", " =1"])
def test_parse_pairs_rejects(bad: str) -> None:
    with pytest.raises(UsageError):
        parsing.parse_pairs([bad])


def test_pairs_override_args_json(tmp_path: Path) -> None:
    assert parsing.build_args(["b=2"], '{"a": 1, "b": 1}') == {"a": 1, "b": 2}
    file = tmp_path / "args.json"
    file.write_text('{"spec": {"executable": "/bin/true"}}')
    assert parsing.build_args([], f"@{file}") == {"spec": {"executable": "/bin/true"}}


@pytest.mark.parametrize("bad", ["[1, 2]", "{nope", "@/does/not/exist"])
def test_args_json_rejects(bad: str) -> None:
    with pytest.raises(UsageError):
        parsing.parse_args_json(bad)


@pytest.mark.parametrize("op", ["ping", ".ping", "orbit.", "a.b.c"])
def test_operation_must_be_plugin_method(op: str) -> None:
    with pytest.raises(UsageError):
        parsing.split_operation(op)


def test_call_passes_parsed_args(monkeypatch: pytest.MonkeyPatch) -> None:
    captured: dict[str, Any] = {}

    class FakeReply:
        def unwrap(self) -> Any:
            return {"ok": 1}

    class FakeClient:
        async def request(self, endpoint: str, operation: str, args: Any, **kw: Any) -> Any:
            captured.update(endpoint=endpoint, operation=operation, args=args, kw=kw)
            return FakeReply()

    def run(func: Any, **_: Any) -> Any:
        import asyncio

        return asyncio.run(func(FakeClient()))

    monkeypatch.setattr(session, "run", run)
    result = runner.invoke(
        app,
        ["call", "demo", "sysinfo.metrics", "fresh=true", 'sections=["cpu"]', "name=x", "--json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"ok": 1}
    assert captured["args"] == {"fresh": True, "sections": ["cpu"], "name": "x"}
    assert captured["operation"] == "sysinfo.metrics"
    assert "timeout" not in captured["kw"]


def test_call_timeout_and_key_are_not_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    captured: dict[str, Any] = {}

    class FakeReply:
        def unwrap(self) -> Any:
            return "pong"

    class FakeClient:
        async def request(self, endpoint: str, operation: str, args: Any, **kw: Any) -> Any:
            captured.update(args=args, kw=kw)
            return FakeReply()

    monkeypatch.setattr(
        session, "run", lambda func, **_: __import__("asyncio").run(func(FakeClient()))
    )
    result = runner.invoke(
        app, ["call", "demo", "x.y", "timeout=5", "-t", "2", "--idempotency-key", "k1"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "pong"
    assert captured["args"] == {"timeout": 5}
    assert captured["kw"]["timeout"] == 2.0 and captured["kw"]["idempotency_key"] == "k1"


# -- error rendering ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code", "exit_code"),
    [
        (EndpointOffline("endpoint 'demo' is offline"), "[ENDPOINT_OFFLINE]", 1),
        (InvalidArgs("fresh: not a boolean"), "[INVALID_ARGS]", 1),
        (BrokerError("cannot reach the broker at amqp://x"), "[UNAVAILABLE]", 1),
        (NotAuthorized("user 'bob' may not call demo"), "[NOT_AUTHORIZED]", 2),
        (AuthenticationFailed("refused the credentials"), "[AUTHENTICATION_FAILED]", 2),
    ],
)
def test_orbit_errors_are_one_red_line(
    monkeypatch: pytest.MonkeyPatch, error: Exception, code: str, exit_code: int
) -> None:
    fake_session(monkeypatch, error)
    result = runner.invoke(app, ["call", "demo", "orbit.ping"])
    assert result.exit_code == exit_code
    assert result.stderr.startswith(code)
    assert str(error).split("] ", 1)[1] in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert result.stdout == ""


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_session(monkeypatch, EndpointOffline("gone"))
    result = runner.invoke(app, ["call", "demo", "orbit.ping", "--debug"])
    assert result.exit_code == 1
    assert "[ENDPOINT_OFFLINE] gone" in result.stderr
    assert "Traceback" in result.stderr


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--debug", "call", "demo", "orbit.ping"], {}),
        (["call", "--debug", "demo", "orbit.ping"], {}),
        (["call", "demo", "orbit.ping"], {"ORBIT_DEBUG": "1"}),
    ],
    ids=["root", "command", "env"],
)
def test_debug_anywhere_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str]
) -> None:
    fake_session(monkeypatch, EndpointOffline("gone"))
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 1
    assert "Traceback" in result.stderr


def test_the_root_and_every_command_take_debug() -> None:
    """``--debug`` is accepted before the command and after every command (not after a
    sub-group's name), whether or not the command declares it."""

    def commands(group: TyperGroup, words: list[str]) -> Iterator[tuple[str, Any]]:
        for name, command in group.commands.items():
            if isinstance(command, TyperGroup):
                assert "--debug" not in options(command), " ".join([*words, name])
                yield from commands(command, [*words, name])
            else:
                yield " ".join([*words, name]), command

    def options(command: Any) -> list[str]:
        return [opt for param in command.params for opt in getattr(param, "opts", [])]

    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup) and "--debug" in options(root)
    found = dict(commands(root, []))
    assert {"call", "broker serve", "gateway", "pool create", "task submit"} <= set(found)
    assert [path for path, command in found.items() if "--debug" not in options(command)] == []


def test_usage_errors_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = fake_session(monkeypatch, {"never": "called"})
    for args in (["call", "demo", "orbit.ping", "oops"], ["call", "demo", "ping"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, args
        assert result.stderr.startswith("[USAGE]")
    result = runner.invoke(app, ["call", "Bad.Name", "orbit.ping"])
    assert result.exit_code == 2
    assert "invalid endpoint name" in result.output + result.stderr
    assert not seen, "no broker session for a usage error"


def test_bad_settings_are_a_config_error(isolated: Path) -> None:
    isolated.write_text(json.dumps({"client": {"heartbeat": 0}}))
    result = runner.invoke(app, ["call", "demo", "orbit.ping"])
    assert result.exit_code == 2
    assert result.stderr.startswith("[CONFIG]")


def test_sysinfo_renders_a_real_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    from orbit_plugins.sysinfo.collect import collect_metrics

    snapshot = collect_metrics(cpu_sample_seconds=0).model_dump(mode="json")
    fake_session(monkeypatch, snapshot)
    result = runner.invoke(app, ["sysinfo", "demo"], env={"COLUMNS": "140"})
    assert result.exit_code == 0, result.output
    for title in ("System", "CPU", "Memory", "Disks", "Network"):
        assert title in result.stdout
    raw = runner.invoke(app, ["sysinfo", "demo", "--json"])
    assert json.loads(raw.stdout)["system"]["hostname"] == snapshot["system"]["hostname"]


def test_sysinfo_rejects_unknown_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_session(monkeypatch, {})
    result = runner.invoke(app, ["sysinfo", "demo", "-s", "cpu", "-s", "toaster"])
    assert result.exit_code == 2
    assert "toaster" in result.stderr


# -- settings precedence and the profile ----------------------------------------------------


def test_profile_is_private(tmp_path: Path) -> None:
    path = profile.save({"client": {"url": "amqp://a:secret@h/orbit"}}, tmp_path / "d" / "p.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert profile.load(path)["client"]["url"].endswith("@h/orbit")


def test_client_url_flag_beats_env_beats_profile(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile.save({"client": {"url": "amqp://p:p@profile/orbit"}})
    assert session.client_settings().url.get_secret_value() == "amqp://p:p@profile/orbit"
    monkeypatch.setenv("ORBIT_URL", "amqp://e:e@env/orbit")
    assert session.client_settings().url.get_secret_value() == "amqp://e:e@env/orbit"
    flagged = session.client_settings("amqp://f:f@flag/orbit", 5)
    assert flagged.url.get_secret_value() == "amqp://f:f@flag/orbit"
    assert flagged.timeout == 5


def test_endpoint_settings_flags_env_profile(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orbit_cli.commands.endpoint import resolve_settings

    profile.save({"endpoints": {"demo": {"url": "amqp://demo:p@profile/orbit", "owner": "alice"}}})
    s = resolve_settings("demo", {})
    assert s.url.get_secret_value() == "amqp://demo:p@profile/orbit"
    assert s.owner == "alice"
    monkeypatch.setenv("ORBIT_ENDPOINT_URL", "amqp://demo:e@env/orbit")
    assert resolve_settings("demo", {}).url.get_secret_value() == "amqp://demo:e@env/orbit"
    s = resolve_settings("demo", {"url": "amqp://demo:f@flag/orbit", "plugins": ["sysinfo"]})
    assert s.url.get_secret_value() == "amqp://demo:f@flag/orbit"
    assert s.plugins == ["sysinfo"]


def test_plugin_settings_set_merge_over_env_or_profile(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orbit_cli.commands.endpoint import _plugin_settings

    profile.save({"endpoints": {"demo": {"plugin_settings": {"tasks": {"workers": 2}}}}})
    items = ["tasks.allow_cloudpickle=true", "sysinfo.prefetch_interval=2.5", "x.name=a=b"]
    assert _plugin_settings("demo", items) == {
        "tasks": {"workers": 2, "allow_cloudpickle": True},
        "sysinfo": {"prefetch_interval": 2.5},
        "x": {"name": "a=b"},
    }
    monkeypatch.setenv("ORBIT_ENDPOINT_PLUGIN_SETTINGS", '{"tasks": {"workers": 8}}')
    assert _plugin_settings("demo", ["tasks.workers=1"]) == {"tasks": {"workers": 1}}
    monkeypatch.setenv("ORBIT_ENDPOINT_PLUGIN_SETTINGS", "{not json")
    with pytest.raises(UsageError, match="ORBIT_ENDPOINT_PLUGIN_SETTINGS is not JSON"):
        _plugin_settings("demo", ["tasks.workers=1"])
    monkeypatch.delenv("ORBIT_ENDPOINT_PLUGIN_SETTINGS")
    for bad in ("tasks", "tasks.=1", ".x=1", "workers=4"):
        with pytest.raises(UsageError, match=r"PLUGIN\.KEY=VALUE"):
            _plugin_settings("demo", [bad])


def test_provision_profile_out_keeps_the_rest_of_the_profile(isolated: Path) -> None:
    from orbit_cli.commands import broker_access

    profile.save({"client": {"url": "amqp://alice:pw@h/orbit"}, "broker": {"amqp_port": 1}})
    urls = {"m1": "amqp://m1:s@h/orbit"}
    data = broker_access._profile_data(urls, [], _provisioned("m1"), isolated)
    profile.update(data, isolated)
    saved = profile.load(isolated)
    assert saved["broker"] == {"amqp_port": 1} and saved["client"]["url"].startswith("amqp://alice")
    assert saved["endpoints"] == {"m1": {"url": "amqp://m1:s@h/orbit", "owner": "alice"}}
    assert "clients" not in saved  # no client users made: nothing written over


def _provisioned(*endpoints: str) -> Any:
    from types import SimpleNamespace

    actions = [
        SimpleNamespace(kind="create-user", target=e, detail="(endpoint)") for e in endpoints
    ]
    return SimpleNamespace(plan=SimpleNamespace(actions=actions))


def test_detached_env_round_trips(isolated: Path, tmp_path: Path) -> None:
    from orbit_cli.commands.endpoint import resolve_settings
    from orbit_cli.commands.endpoint_run import env_for
    from orbit_endpoint.settings import EndpointSettings

    s = resolve_settings(
        "demo",
        {
            "url": "amqp://demo:pw@h:1/orbit",
            "plugins": ["sysinfo"],
            "allowed_users": ["alice", "bob"],
            "state_dir": tmp_path,
            "log_level": "WARNING",
        },
    )
    env = env_for(s)
    assert env["ORBIT_ENDPOINT_PLUGINS"] == '["sysinfo"]'
    saved = dict(os.environ)
    try:
        os.environ.update({k: v for k, v in env.items() if k.startswith("ORBIT_ENDPOINT_")})
        again = EndpointSettings()  # type: ignore[call-arg]
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert again.name == "demo" and again.allowed_users == ["alice", "bob"]
    assert again.url.get_secret_value() == "amqp://demo:pw@h:1/orbit"
    assert again.state_dir == tmp_path
    assert again.log_level == "WARNING"


def test_endpoint_log_level_flag_env_and_debug(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orbit_cli.commands.endpoint import resolve_settings

    monkeypatch.setenv("LOG_LEVEL", "ERROR")  # another tool's variable is not ours
    assert resolve_settings("demo", {}).log_level == "INFO"
    monkeypatch.setenv("ORBIT_LOG_LEVEL", "warning")
    assert resolve_settings("demo", {}).log_level == "WARNING"
    monkeypatch.setenv("ORBIT_ENDPOINT_LOG_LEVEL", "error")  # the endpoint's own beats it
    assert resolve_settings("demo", {}).log_level == "ERROR"
    flagged = resolve_settings("demo", {"log_level": "DEBUG"})
    assert flagged.log_level == flagged.effective_log_level == "DEBUG"
    assert resolve_settings("demo", {"debug": True}).effective_log_level == "DEBUG"
    args = ["endpoint", "start", "--name", "demo", "--log-level", "loud"]
    bad = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert bad.exit_code == 2 and "not one of DEBUG, INFO, WARNING, ERROR" in bad.output


def test_mask_url() -> None:
    from orbit_cli.render import mask_url

    assert mask_url("amqp://u:secret@h:5672/orbit") == "amqp://u:***@h:5672/orbit"
    assert mask_url("amqp://h/orbit") == "amqp://h/orbit"


def test_plugins_list_json() -> None:
    result = runner.invoke(app, ["plugins", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert "metrics" in rows["sysinfo"]["operations"]


def test_cli_import_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, orbit_cli.app;"
        "heavy = {'aio_pika', 'orbit_endpoint', 'orbit_broker', 'psutil', 'httpx', 'pika'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
