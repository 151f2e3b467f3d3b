"""Staging plugin pieces without a broker: path policy, ranges, sessions, ownership."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from orbit_client.staging import chunks, gaps_of, merge
from orbit_plugins.base import Call
from orbit_plugins.staging.paths import PathPolicy
from orbit_plugins.staging.plugin import StagingPlugin
from orbit_plugins.staging.schema import PutBeginArgs, PutChunkArgs, UploadRef
from orbit_plugins.staging.uploads import add_range, missing_ranges
from orbit_plugins.testing import FakeContext
from orbit_protocol import Conflict, InvalidArgs, NotAuthorized, NotFound

ALICE, BOB = Call("r1", "alice", "ep"), Call("r2", "bob", "ep")


def test_ranges() -> None:
    ranges = add_range([], 10, 20)
    ranges = add_range(ranges, 0, 5)
    ranges = add_range(ranges, 5, 10)
    assert ranges == [(0, 20)]
    assert missing_ranges([(0, 4), (6, 8)], 10) == [(4, 6), (8, 10)]
    assert missing_ranges([], 0) == []
    assert merge([(0, 4)], 4, 8) == [(0, 8)]
    assert gaps_of([(2, 4)], 6) == [(0, 2), (4, 6)]
    assert list(chunks([(0, 5), (7, 9)], 2)) == [(0, 2), (2, 2), (4, 1), (7, 2)]


def test_path_policy(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "link").symlink_to(tmp_path)
    policy = PathPolicy([str(root)])
    assert policy.resolve(f"{root}/d/new") == root / "d" / "new"
    assert policy.is_root(policy.resolve(str(root)))
    for bad in ("/etc/passwd", f"{root}/link/x", f"{root}/d/../../x", f"{root}/d/.."):
        with pytest.raises(NotAuthorized):
            policy.resolve(bad)
    for bad in ("rel/x", "", "~user/x"):
        with pytest.raises(InvalidArgs):
            policy.resolve(bad)
    home = PathPolicy()
    assert home.resolve("~/x").parent == Path("~").expanduser().resolve()


def _plugin(tmp_path: Path) -> tuple[StagingPlugin, FakeContext]:
    plugin = StagingPlugin({"roots": [str(tmp_path / "root")], "progress_interval": 0})
    (tmp_path / "root").mkdir(exist_ok=True)
    ctx = FakeContext(tmp_path / "state")
    plugin._ctx = ctx
    return plugin, ctx


def _begin(plugin: StagingPlugin, path: str, data: bytes, call: Call = ALICE) -> str:
    args = PutBeginArgs(path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest())
    return plugin.put_begin(args, call).upload_id


def _chunk(upload_id: str, offset: int, data: bytes) -> PutChunkArgs:
    return PutChunkArgs(upload_id=upload_id, offset=offset, data=base64.b64encode(data).decode())


def test_only_the_creator_continues_an_upload(tmp_path: Path) -> None:
    plugin, ctx = _plugin(tmp_path)
    target = f"{tmp_path}/root/f.bin"
    uid = _begin(plugin, target, b"abcdef")
    with pytest.raises(NotAuthorized):
        plugin.put_chunk(_chunk(uid, 0, b"abc"), BOB)
    with pytest.raises(NotAuthorized):
        plugin.put_commit(UploadRef(upload_id=uid), BOB)
    assert plugin.uploads(BOB).uploads == []
    admin = Call("r3", "root", "ep", is_admin=True)
    assert [u.upload_id for u in plugin.uploads(admin).uploads] == [uid]
    # bob's identical upload is his own session, not alice's
    assert _begin(plugin, target, b"abcdef", BOB) != uid
    plugin.put_chunk(_chunk(uid, 3, b"def"), ALICE)
    with pytest.raises(Conflict, match="incomplete"):
        plugin.put_commit(UploadRef(upload_id=uid), ALICE)
    plugin.put_chunk(_chunk(uid, 0, b"abc"), ALICE)
    assert plugin.put_commit(UploadRef(upload_id=uid), ALICE).size == 6
    assert Path(target).read_bytes() == b"abcdef"
    assert ctx.events[-1][1]["done"] is True
    with pytest.raises(NotFound):
        plugin.put_chunk(_chunk(uid, 0, b"abc"), ALICE)


def test_sessions_survive_a_restart_and_bad_data_is_refused(tmp_path: Path) -> None:
    plugin, _ = _plugin(tmp_path)
    target = f"{tmp_path}/root/g.bin"
    uid = _begin(plugin, target, b"0123456789")
    plugin.put_chunk(_chunk(uid, 0, b"01234"), ALICE)
    with pytest.raises(InvalidArgs):
        plugin.put_chunk(_chunk(uid, 8, b"89xx"), ALICE)  # beyond the declared size
    with pytest.raises(InvalidArgs):
        plugin.put_chunk(PutChunkArgs(upload_id=uid, offset=0, data="!!"), ALICE)
    again, _ = _plugin(tmp_path)  # a new process reads the persisted sessions
    assert _begin(again, target, b"0123456789") == uid
    [info] = again.uploads(ALICE).uploads
    assert info.received == [(0, 5)]
    again.put_chunk(_chunk(uid, 5, b"5678X"), ALICE)  # corrupted content
    with pytest.raises(Conflict, match="checksum"):
        again.put_commit(UploadRef(upload_id=uid), ALICE)
    assert not Path(target).exists() and again.uploads(ALICE).uploads == []
    assert not list((tmp_path / "root").iterdir())  # temp file removed too
