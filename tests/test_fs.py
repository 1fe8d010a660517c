"""plams_cli._fs: the atomic writes, writer tags and the pid check."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from plams_cli._fs import Writer, atomic_concatenate, atomic_write, pid_alive, tag_writer, unique_tag


def test_atomic_write_replaces_the_file_and_leaves_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    target.write_bytes(b"old")
    atomic_write(str(target), b"new" * 100_000)
    assert target.read_bytes() == b"new" * 100_000
    assert os.listdir(tmp_path) == ["f.json"]


def test_atomic_write_returns_the_status_of_the_file_it_wrote(tmp_path: Path) -> None:
    """Callers (saving a job) take the file's identity from the write instead of a stat after it."""
    target = tmp_path / "f.dill"
    target.write_bytes(b"old")
    written = atomic_write(str(target), b"new content")
    now = os.stat(target)
    assert (written.st_ino, written.st_size, written.st_mtime_ns) == (now.st_ino, now.st_size, now.st_mtime_ns)
    assert now.st_size == len(b"new content")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_tags_with_its_own_pid(tmp_path: Path) -> None:
    unique_tag()  # the parent's host and pid are known now
    out = tmp_path / "child"
    pid = os.fork()
    if pid == 0:  # the child: write its tag and leave at once
        try:
            out.write_text(unique_tag())
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert int(out.read_text().rsplit(".", 2)[1]) == pid
    assert int(unique_tag().rsplit(".", 2)[1]) == os.getpid()


def test_atomic_write_mode_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        atomic_write(str(tmp_path / "a"), b"x", mode=0o666)
        atomic_write(str(tmp_path / "b"), b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o664
    assert stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o644


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    seen: list[str] = []

    def failing_replace(src: str, dst: str) -> None:
        seen.append(os.path.basename(src))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("plams_cli._fs.os.replace", failing_replace)
    with pytest.raises(OSError, match="No space"):
        atomic_write(str(target), b"new")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["f"]
    # the temporary name: hidden, the target's name, this writer's tag, ".tmp"
    assert seen[0].startswith(".f.") and seen[0].endswith(".tmp")
    assert tag_writer(seen[0]) == Writer(os.getpid(), True)


def test_unique_tags_differ_and_name_host_and_pid() -> None:
    tags = {unique_tag() for _ in range(1000)}
    assert len(tags) == 1000
    host, pid, random = next(iter(tags)).rsplit(".", 2)
    assert host == socket.gethostname() and int(pid) == os.getpid() and len(random) == 12


@pytest.mark.parametrize(
    ("name", "writer"),
    [
        (".doc.json.HOST.4242.0123456789ab.tmp", Writer(4242, True)),
        (".init-" + "0" * 32 + "-HOST.4242.0123456789ab", Writer(4242, True)),
        (".doc.json.other.example.org.4242.0123456789ab.tmp", Writer(4242, False)),
        ("doc.json.4242.7.tmp", None),
        ("results.tmp", None),
        (".doc.json.HOST.4242.0123456789AB.tmp", None),
    ],
    ids=["file", "folder", "other-host", "old-format", "no-tag", "not-lower-hex"],
)
def test_tag_writer(name: str, writer: Writer | None) -> None:
    assert tag_writer(name.replace("HOST", socket.gethostname())) == writer


def test_pid_alive() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert pid_alive(os.getpid())
    assert not pid_alive(process.pid)
    assert not pid_alive(0) and not pid_alive(-1)


def test_a_zombie_is_not_alive() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)  # ended, not reaped: a zombie
        assert not pid_alive(process.pid)
    finally:
        process.wait()


def test_atomic_concatenate_streams_the_sources_into_place(tmp_path: Path) -> None:
    """The target becomes the sources one after the other (itself among them); a failure changes nothing."""
    target, second = tmp_path / "log", tmp_path / "log2"
    target.write_bytes(b"old\n")
    second.write_bytes(b"x" * (3 << 20))  # more than one chunk
    atomic_concatenate(str(target), [str(target), str(second)])
    assert target.read_bytes() == b"old\n" + b"x" * (3 << 20)
    before = target.read_bytes()
    with pytest.raises(FileNotFoundError):
        atomic_concatenate(str(target), [str(second), str(tmp_path / "missing")])
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["log", "log2"]
