"""A process killed in the middle of a state point move leaves a workspace that repairs itself."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import signac

from plams_cli.errors import JobsCorruptedError
from plams_cli.workspace import Workspace, calc_id
from plams_cli.workspace.statepoint import MOVE_FILENAME

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

OLD, NEW = {"a": 1, "keep": "x"}, {"a": 2, "keep": "x"}

# Moves job OLD to NEW and dies (os._exit, no clean-up) at the step named in argv[2].
_KILLED_MOVE = """
import os, sys
from plams_cli.workspace import Workspace, _cache
from plams_cli.workspace.statepoint import MOVE_FILENAME

root, step = sys.argv[1], sys.argv[2]
job = Workspace(root).open_job({"a": 1, "keep": "x"})
real_rename, real_replace, real_write = os.rename, os.replace, os.write

def rename(src, dst, *args, **kwargs):
    if src == job.path:
        os._exit(9)
    return real_rename(src, dst, *args, **kwargs)

def rename_then_die(src, dst, *args, **kwargs):
    real_rename(src, dst, *args, **kwargs)
    if src == job.path:
        os._exit(9)

def replace(src, dst, *args, **kwargs):
    if os.path.basename(str(src)).startswith(MOVE_FILENAME):
        os._exit(9)
    return real_replace(src, dst, *args, **kwargs)

def torn_write(fd, data):
    real_write(fd, bytes(data)[: len(data) // 2])
    os._exit(9)

if step == "writing-pending":
    os.write = torn_write
elif step == "before-rename":
    os.rename = rename
elif step == "after-rename":
    os.rename = rename_then_die
elif step == "before-replace":
    os.replace = replace
elif step == "before-journal":
    _cache.StatepointCache.append = lambda *args, **kwargs: os._exit(9)
job.sp.a = 2
os._exit(0)
"""

STEPS = [
    ("writing-pending", OLD),
    ("before-rename", OLD),
    ("after-rename", NEW),
    ("before-replace", NEW),
    ("before-journal", NEW),
]


def _killed_move(root: str, step: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _KILLED_MOVE, root, step], capture_output=True, text=True
    )
    assert result.returncode == 9, result.stderr


@pytest.fixture
def root(tmp_path: Path) -> str:
    ws = Workspace(tmp_path / "p", create=True)
    job = ws.open_job(OLD).init()
    job.doc.x = 5
    job.data["v"] = 1.5
    ws.open_job({"other": True}).init()
    ws.update_cache()  # a cache that knows the old id
    return ws.root


def _expect(root: str, expected: dict[str, Any]) -> str:
    """Check that the workspace is consistent and holds the moved job once."""
    ws = Workspace(root)
    job_id = calc_id(expected)
    ids = ws.find_job_ids()
    assert len(ws) == 2 == len(ids) and job_id in ids
    assert ws.find_job_ids({"keep": "x"}) == [job_id]
    job = ws.open_job(id=job_id)
    assert job.statepoint() == expected
    assert job.doc.x == 5 and job.data["v"] == 1.5
    return job_id


@pytest.mark.parametrize(("step", "expected"), STEPS, ids=[s[0] for s in STEPS])
def test_find_repairs_an_interrupted_move(root: str, step: str, expected: dict[str, Any]) -> None:
    _killed_move(root, step)
    job_id = _expect(root, expected)
    # The repair is on disk: signac reads the same workspace without complaint.
    project = signac.get_project(root)
    project.check()
    assert project.open_job(id=job_id).statepoint() == expected
    Workspace(root).check()
    # A pending file of a move killed before its rename stays until it is old enough
    # (it might be a live writer's on another host); then check() deletes it.
    folder = os.path.join(root, "workspace", job_id)
    for name in _pending(folder):
        _age(os.path.join(folder, name))
    Workspace(root).check()
    assert not _pending(folder)


@pytest.mark.parametrize(("step", "expected"), STEPS, ids=[s[0] for s in STEPS])
def test_iterating_repairs_an_interrupted_move(root: str, step: str, expected: dict[str, Any]) -> None:
    _killed_move(root, step)
    ws = Workspace(root)
    assert sorted(map(str, (j.statepoint() for j in ws))) == sorted(map(str, [expected, {"other": True}]))
    signac.get_project(root).check()


@pytest.mark.parametrize(("step", "expected"), STEPS, ids=[s[0] for s in STEPS])
def test_opening_repairs_an_interrupted_move(root: str, step: str, expected: dict[str, Any]) -> None:
    _killed_move(root, step)
    ws = Workspace(root)
    job = ws.open_job(expected)
    assert job.doc.x == 5  # reading the document initialises, which checks and repairs
    signac.get_project(root).check()
    # The job can move again, and back.
    job.sp.a = 3
    job.sp.a = 1
    assert Workspace(root).open_job(id=calc_id(OLD)).doc.x == 5
    Workspace(root).check()


def _pending(folder: str) -> list[str]:
    return [name for name in os.listdir(folder) if name.startswith(MOVE_FILENAME)]


def _age(path: str, seconds: float = 10) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_leftover_pending_file_does_not_disturb(root: str) -> None:
    _killed_move(root, "before-rename")
    folder = os.path.join(root, "workspace", calc_id(OLD))
    (name,) = _pending(folder)
    assert Workspace(root).open_job(OLD).statepoint() == OLD
    # Its writer is dead, but a pending file this young might still be another host's.
    assert Workspace(root).check() == []
    _age(os.path.join(folder, name))
    assert Workspace(root).check() == [os.path.join(folder, name)]
    assert not _pending(folder)


def test_pending_file_of_another_id_is_not_used(root: str) -> None:
    # A folder whose state point is wrong, holding a pending file that is not its own
    # either, is corrupted: nothing is renamed or replaced on a guess.
    ws = Workspace(root)
    job = ws.open_job(OLD)
    Path(job.fn("signac_statepoint.json")).write_text('{"a": 7}')
    Path(job.fn(MOVE_FILENAME)).write_text('{"a": 8}')
    with pytest.raises(JobsCorruptedError):
        Workspace(root).check()
    assert Path(job.fn("signac_statepoint.json")).read_text() == '{"a": 7}'
