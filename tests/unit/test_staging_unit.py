"""Staging plugin pieces without a broker: path policy, ranges, sessions, ownership."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from pathlib import Path

import pytest

from orbit_plugins.base import Call
from orbit_plugins.staging.digest import PrefixHash
from orbit_plugins.staging.paths import PathPolicy
from orbit_plugins.staging.plugin import StagingPlugin
from orbit_plugins.staging.ranges import add_range, chunks, covered, missing_ranges
from orbit_plugins.staging.schema import (
    GetChunkArgs,
    MkdirArgs,
    PathArgs,
    PutBeginArgs,
    PutChunkArgs,
    PutCommitArgs,
    RemoveArgs,
    StatArgs,
)
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
    assert add_range([(0, 4)], 4, 8) == [(0, 8)]
    assert missing_ranges([(2, 4)], 6) == [(0, 2), (4, 6)]
    assert list(chunks([(0, 5), (7, 9)], 2)) == [(0, 2), (2, 2), (4, 1), (7, 2)]
    assert covered([(0, 4), (6, 9)]) == 7


def test_the_old_client_import_path_is_an_alias() -> None:
    """``orbit_client.staging`` re-exports the feature's client and its one copy of the range
    maths and base64 (no second copy to drift)."""
    import orbit_client.staging as old
    from orbit_plugins.staging import client, codec

    assert old.upload is client.upload and old.download is client.download
    assert old.merge is add_range and old.gaps_of is missing_ranges and old.chunks is chunks
    assert old.b64encode is codec.encode and old.b64decode is codec.decode


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
        plugin.put_commit(PutCommitArgs(upload_id=uid), BOB)
    assert plugin.uploads(BOB).uploads == []
    admin = Call("r3", "root", "ep", is_admin=True)
    assert [u.upload_id for u in plugin.uploads(admin).uploads] == [uid]
    # bob's identical upload is his own session, not alice's
    assert _begin(plugin, target, b"abcdef", BOB) != uid
    plugin.put_chunk(_chunk(uid, 3, b"def"), ALICE)
    with pytest.raises(Conflict, match="incomplete"):
        plugin.put_commit(PutCommitArgs(upload_id=uid), ALICE)
    plugin.put_chunk(_chunk(uid, 0, b"abc"), ALICE)
    assert plugin.put_commit(PutCommitArgs(upload_id=uid), ALICE).size == 6
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
        again.put_commit(PutCommitArgs(upload_id=uid), ALICE)
    assert not Path(target).exists() and again.uploads(ALICE).uploads == []
    assert not list((tmp_path / "root").iterdir())  # temp file removed too


def test_a_torn_line_in_the_ranges_log_is_skipped(tmp_path: Path) -> None:
    plugin, _ = _plugin(tmp_path)
    uid = _begin(plugin, f"{tmp_path}/root/t.bin", b"0123456789")
    plugin.put_chunk(_chunk(uid, 0, b"012"), ALICE)
    plugin.put_chunk(_chunk(uid, 6, b"678"), ALICE)
    log = tmp_path / "state" / "uploads" / f"{uid}.ranges"
    with open(log, "a") as handle:
        handle.write("3 6 17")  # the endpoint died in the middle of a line: no newline
    log.write_text(log.read_text()[:-2])  # ... and the line is cut short
    again, _ = _plugin(tmp_path)
    [info] = again.uploads(ALICE).uploads
    assert info.received == [(0, 3), (6, 9)] and info.received_bytes == 6


def test_downloads_report_progress(tmp_path: Path) -> None:
    plugin, ctx = _plugin(tmp_path)
    (tmp_path / "root" / "d.bin").write_bytes(b"x" * 10)
    path = f"{tmp_path}/root/d.bin"
    for offset in (0, 4):  # a resumed download: the client already has [8, 10)
        chunk = plugin.get_chunk(
            GetChunkArgs(path=path, offset=offset, size=4, download_id="dl1", want=8), ALICE
        )
        assert chunk.size == 4
    plugin.get_chunk(GetChunkArgs(path=path, offset=0, size=4), BOB)  # no id: no event
    events = [data for topic, data in ctx.events if topic == "progress"]
    assert [(e["bytes"], e["total"], e["done"]) for e in events] == [(4, 8, False), (8, 8, True)]
    assert {e["direction"] for e in events} == {"get"} and events[0]["download_id"] == "dl1"
    assert events[0]["user"] == "alice" and events[0]["path"] == path
    assert plugin._downloads.active == {}  # finished downloads are forgotten


def test_a_directory_swapped_for_a_symlink_after_the_check_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin, _ = _plugin(tmp_path)
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "d").mkdir()
    (root / "d" / "f.txt").write_text("inside")
    outside.mkdir()
    (outside / "f.txt").write_text("secret")
    checked = plugin.policy.resolve

    def resolve_then_swap(raw: str) -> Path:
        if (root / "d").is_symlink():  # put the real directory back for the check
            (root / "d").unlink()
            (root / "d.orig").rename(root / "d")
        real = checked(raw)  # the check passes on the real directory ...
        (root / "d").rename(root / "d.orig")  # ... then it becomes a link outside
        (root / "d").symlink_to(outside)
        return real

    monkeypatch.setattr(plugin.policy, "resolve", resolve_then_swap)
    with pytest.raises(NotAuthorized, match="symlink"):
        plugin.get_chunk(GetChunkArgs(path=f"{root}/d/f.txt", offset=0, size=10), ALICE)
    with pytest.raises(NotAuthorized, match="symlink"):
        plugin.stat(StatArgs(path=f"{root}/d/f.txt", checksum=True))
    with pytest.raises(NotAuthorized, match="symlink"):
        _begin(plugin, f"{root}/d/new.bin", b"data")
    with pytest.raises(NotAuthorized, match="symlink"):
        plugin.mkdir(MkdirArgs(path=f"{root}/d/sub"))
    with pytest.raises(NotAuthorized, match="symlink"):
        plugin.list(PathArgs(path=f"{root}/d"))
    with pytest.raises(NotAuthorized, match="symlink"):
        plugin.remove(RemoveArgs(path=f"{root}/d/f.txt"))
    assert sorted(p.name for p in outside.iterdir()) == ["f.txt"]  # nothing created or removed


def test_the_final_component_swapped_for_a_symlink_is_not_followed(tmp_path: Path) -> None:
    plugin, _ = _plugin(tmp_path)
    root = tmp_path / "root"
    (tmp_path / "secret").write_text("secret")
    (root / "f.txt").symlink_to(tmp_path / "secret")  # appeared after resolve() said "inside"
    with pytest.raises(NotAuthorized, match="symlink"):
        plugin.policy.open(root / "f.txt", os.O_RDONLY)
    uid = _begin(plugin, f"{root}/up.bin", b"abc")
    temp = plugin.store.get(uid).temp_path  # type: ignore[union-attr]
    temp.unlink()
    temp.symlink_to(tmp_path / "secret")  # the temp file replaced by a link outside
    with pytest.raises(NotAuthorized, match="symlink"):
        plugin.put_chunk(_chunk(uid, 0, b"abc"), ALICE)
    assert (tmp_path / "secret").read_text() == "secret"


def test_the_commit_digest_follows_the_bytes_on_disk_through_rewrites(tmp_path: Path) -> None:
    plugin, _ = _plugin(tmp_path)
    good = b"".join(bytes([i]) * 1000 for i in range(8))
    target = f"{tmp_path}/root/p.bin"
    uid = _begin(plugin, target, good)
    session = plugin.store.get(uid)
    assert session is not None
    for i in (1, 0, 3, 2):  # out of order: the prefix hash catches up when 0 lands
        plugin.put_chunk(_chunk(uid, i * 1000, good[i * 1000 : (i + 1) * 1000]), ALICE)
    assert session.prefix.end == 4000
    # a re-sent chunk with other bytes inside the hashed prefix resets it: the commit
    # must see the changed file, not the digest of what was there before
    plugin.put_chunk(_chunk(uid, 1000, b"X" * 1000), ALICE)
    assert session.prefix.generation == 1  # reset, then hashed again from the file
    for i in range(4, 8):
        plugin.put_chunk(_chunk(uid, i * 1000, good[i * 1000 : (i + 1) * 1000]), ALICE)
    with pytest.raises(Conflict, match="checksum"):
        plugin.put_commit(PutCommitArgs(upload_id=uid), ALICE)

    uid = _begin(plugin, target, good)
    session = plugin.store.get(uid)
    assert session is not None
    for i in range(8):
        plugin.put_chunk(_chunk(uid, i * 1000, good[i * 1000 : (i + 1) * 1000]), ALICE)
    assert session.prefix.end == 8000  # nothing left for the commit to read back
    result = plugin.put_commit(PutCommitArgs(upload_id=uid), ALICE)
    assert result.sha256 == hashlib.sha256(good).hexdigest()
    assert Path(target).read_bytes() == good


def test_the_sha256_may_come_with_the_commit_and_resume_matches_the_source(
    tmp_path: Path,
) -> None:
    plugin, _ = _plugin(tmp_path)
    data, target = b"0123456789", f"{tmp_path}/root/late.bin"
    good = hashlib.sha256(data).hexdigest()
    begin = PutBeginArgs(path=target, size=len(data), source="src-1")
    uid = plugin.put_begin(begin, ALICE).upload_id
    plugin.put_chunk(_chunk(uid, 0, data[:4]), ALICE)
    # the same source resumes; another source (or none) does not
    assert plugin.put_begin(begin, ALICE).upload_id == uid
    assert plugin.put_begin(begin.model_copy(update={"source": "src-2"}), ALICE).upload_id != uid
    plugin.put_chunk(_chunk(uid, 4, data[4:]), ALICE)
    with pytest.raises(InvalidArgs, match="no sha256"):
        plugin.put_commit(PutCommitArgs(upload_id=uid), ALICE)
    assert plugin.put_commit(PutCommitArgs(upload_id=uid, sha256=good), ALICE).sha256 == good
    assert Path(target).read_bytes() == data

    other = f"{tmp_path}/root/both.bin"
    uid = _begin(plugin, other, data)  # sha256 given at put_begin
    plugin.put_chunk(_chunk(uid, 0, data), ALICE)
    with pytest.raises(Conflict, match="differs from put_begin"):
        plugin.put_commit(PutCommitArgs(upload_id=uid, sha256="0" * 64), ALICE)
    assert plugin.put_commit(PutCommitArgs(upload_id=uid, sha256=good), ALICE).size == 10


def test_the_prefix_hash_uses_a_chunk_from_memory_only_while_it_is_the_last_write(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"on disk!")
    fd = os.open(path, os.O_RDONLY)
    try:
        lock = threading.Lock()
        stale = PrefixHash()
        stale.written(0)
        stale.written(0)  # another chunk was confirmed after the one we hold
        stale.advance(lock, lambda: 8, fd, (0, b"in mem!!", 1))
        assert stale.finish(lock, fd, 8) == hashlib.sha256(b"on disk!").hexdigest()

        fresh = PrefixHash()
        fresh.written(0)
        fresh.advance(lock, lambda: 8, fd, (0, b"in mem!!", 1))  # no read-back
        assert fresh.finish(lock, fd, 8) == hashlib.sha256(b"in mem!!").hexdigest()
    finally:
        os.close(fd)
