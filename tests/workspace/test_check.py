"""Workspace.check() deletes the leftovers of killed writers, and only those."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plams_cli.errors import JobsCorruptedError
from plams_cli.workspace import Workspace


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _age(path: Path, seconds: float) -> Path:
    """Make ``path`` (a file, created if missing) look ``seconds`` old."""
    if not path.exists():
        path.write_text("{}")
    old = time.time() - seconds
    os.utime(path, (old, old))
    return path


@pytest.fixture
def job_folder(ws: Workspace) -> Path:
    job = ws.open_job({"a": 1}).init()
    job.doc.x = 1
    return Path(job.path)


def _init_leftover(ws: Workspace, pid: int, age: float) -> Path:
    folder = Path(ws.workspace, f".init-{'0' * 32}-{pid}.3")
    folder.mkdir()
    (folder / "signac_statepoint.json").write_text("{}")
    return _age(folder, age)


@pytest.mark.parametrize(
    ("who", "age", "removed"),
    [
        ("dead", 10, True),
        ("dead", 1, False),
        ("alive", 10, False),
        ("alive", 120, True),
    ],
    ids=["dead-writer", "dead-but-young", "live-writer", "live-but-old"],
)
def test_leftovers_by_age_and_writer(
    ws: Workspace, job_folder: Path, dead_pid: int, who: str, age: float, removed: bool
) -> None:
    pid = dead_pid if who == "dead" else os.getpid()
    paths = [
        _init_leftover(ws, pid, age),
        _age(job_folder / f"signac_job_document.json.{pid}.4.tmp", age),
        _age(Path(ws.root, ".signac", f"plams_statepoint_cache.{pid}.5.tmp"), age),
    ]
    result = Workspace(ws.root).check()
    assert result == (sorted(map(str, paths)) if removed else [])
    assert all(path.exists() != removed for path in paths)
    assert sorted(os.listdir(job_folder)) == sorted(
        [".signac_job_document.json.lock", "signac_job_document.json", "signac_statepoint.json"]
        + ([] if removed else [paths[1].name])
    )


def test_files_without_a_writer_tag_are_left_alone(ws: Workspace, job_folder: Path) -> None:
    mine = _age(job_folder / "results.tmp", 1000)
    assert Workspace(ws.root).check() == []
    assert mine.exists()


def test_leftovers_are_removed_even_when_a_job_is_corrupted(
    ws: Workspace, job_folder: Path, dead_pid: int
) -> None:
    leftover = _init_leftover(ws, dead_pid, 100)
    broken = ws.open_job({"b": 1}).init()
    Path(broken.fn("signac_statepoint.json")).write_text("junk")
    with pytest.raises(JobsCorruptedError) as info:
        Workspace(ws.root).check()
    assert info.value.job_ids == [broken.id]
    assert info.value.removed == [str(leftover)]  # type: ignore[attr-defined]
    assert not leftover.exists()


def _tag(pid: int, host: str | None = None) -> str:
    """A unique_tag() of writer ``pid`` on ``host`` (default: this host)."""
    return f"{host or os.uname().nodename}.{pid}.0123456789ab"


@pytest.mark.parametrize(
    ("who", "host", "age", "removed"),
    [
        ("dead", None, 10, True),
        ("dead", None, 1, False),
        ("alive", None, 10, False),
        ("dead", "other.node.example", 10, False),
        ("dead", "other.node.example", 120, True),
        ("alive", None, 120, True),
    ],
    ids=["dead-writer", "dead-but-young", "live-writer", "other-host", "other-host-but-old", "live-but-old"],
)
def test_leftovers_named_with_host_tags(
    ws: Workspace, job_folder: Path, dead_pid: int, who: str, host: str | None, age: float, removed: bool
) -> None:
    """The names atomic_write and job creation use now: ``.<name>.<host>.<pid>.<hex>.tmp``."""
    tag = _tag(dead_pid if who == "dead" else os.getpid(), host)
    init = Path(ws.workspace, f".init-{'0' * 32}-{tag}")
    init.mkdir()
    paths = [
        _age(init, age),
        _age(job_folder / f".signac_job_document.json.{tag}.tmp", age),
        _age(job_folder / f".signac_statepoint.json.moving.{tag}", age),
        _age(Path(ws.root, ".signac", f".plams_statepoint_cache.json.{tag}.tmp"), age),
    ]
    assert Workspace(ws.root).check() == (sorted(map(str, paths)) if removed else [])
    assert all(path.exists() != removed for path in paths)


KILLED_WRITER = """
import os, signal, sys
import plams_cli._fs as fs
from plams_cli.workspace import Workspace
job = Workspace(sys.argv[1]).open_job({"a": 1})
def killed(src, dst):  # dies between writing the temporary file and moving it in place
    os.kill(os.getpid(), signal.SIGKILL)
fs.os.replace = killed
job.doc.x = 2
"""


def test_check_removes_the_temporary_file_of_a_killed_atomic_write(ws: Workspace, job_folder: Path) -> None:
    before = sorted(os.listdir(job_folder))
    result = subprocess.run([sys.executable, "-c", KILLED_WRITER, ws.root], capture_output=True, timeout=60)
    assert result.returncode == -9, result.stderr
    leftovers = sorted(set(os.listdir(job_folder)) - set(before))
    assert len(leftovers) == 1 and leftovers[0].startswith(".signac_job_document.json.")
    leftover = job_folder / leftovers[0]
    assert Workspace(ws.root).check() == []  # young: its writer might still be at work
    _age(leftover, 10)
    assert Workspace(ws.root).check() == [str(leftover)]
    assert sorted(os.listdir(job_folder)) == before
    assert Workspace(ws.root).open_job({"a": 1}).doc() == {"x": 1}
