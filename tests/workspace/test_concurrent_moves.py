"""Several processes moving the same jobs at once leave every folder holding its own state point."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import signac

from plams_cli.errors import DestinationExistsError, WorkspaceError
from plams_cli.workspace import JobRemovedError, Workspace, calc_id
from plams_cli.workspace.statepoint import MOVE_FILENAME, STATEPOINT_FILENAME

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

N_JOBS = 300

# Waits for the start file, then moves every job {"k": k} to {"k": k, "by": TAG} and
# prints how each attempt ended, as JSON.
_MOVER = """
import collections, json, os, sys, time
from plams_cli.workspace import Workspace

root, tag, n, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ws = Workspace(root)
while not os.path.exists(start):
    time.sleep(0.001)
outcomes = collections.Counter()
for k in range(n):
    try:
        ws.open_job({"k": k}).update_statepoint({"by": tag})
        outcomes["moved"] += 1
    except Exception as exc:
        outcomes[type(exc).__name__] += 1
print(json.dumps(outcomes))
"""


def _folders_hash_to_their_names(workspace: str) -> list[str]:
    """The job folders whose state point file does not hash to the folder name."""
    bad = []
    for name in os.listdir(workspace):
        if name.startswith("."):
            continue
        try:
            with open(os.path.join(workspace, name, STATEPOINT_FILENAME), "rb") as file:
                statepoint = json.load(file)
        except (OSError, ValueError):
            bad.append(name)
            continue
        if calc_id(statepoint) != name:
            bad.append(name)
    return bad


def test_two_processes_moving_the_same_jobs(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "p", create=True)
    for k in range(N_JOBS):
        ws.open_job({"k": k}).init()
    start = tmp_path / "start"
    movers = [
        subprocess.Popen(
            [sys.executable, "-c", _MOVER, ws.root, tag, str(N_JOBS), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("A", "B")
    ]
    time.sleep(0.2)  # both interpreters started: let them race
    start.touch()
    outcomes: collections.Counter[str] = collections.Counter()
    for mover in movers:
        out, err = mover.communicate(timeout=60)
        assert mover.returncode == 0, err
        outcomes.update(json.loads(out))
    # Each attempt moved the job, or lost the race with a clear error; never a raw
    # FileNotFoundError. (A process that finds the folder gone before it starts moves
    # its never-created Job object in memory, as signac does: counted as moved.)
    assert set(outcomes) <= {"moved", "JobRemovedError", "DestinationExistsError"}, outcomes
    assert len(Workspace(ws.root)) == N_JOBS
    assert _folders_hash_to_their_names(ws.workspace) == []
    assert Workspace(ws.root).check() == []
    signac.get_project(ws.root).check()
    assert sorted(job.sp.k for job in Workspace(ws.root)) == list(range(N_JOBS))


@pytest.fixture
def race(monkeypatch: pytest.MonkeyPatch, ws: Workspace) -> Any:
    """Run ``other`` (another process's move) just before this process renames the folder."""

    def arrange(other: Any) -> None:
        real_rename = os.rename
        fired: list[bool] = []

        def rename(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
            if not fired and os.path.dirname(str(src)) == ws.workspace:
                fired.append(True)
                other()
            real_rename(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, "rename", rename)

    return arrange


def test_losing_move_says_the_job_moved(ws: Workspace, race: Any) -> None:
    job = ws.open_job({"a": 1}).init()
    job.doc.x = 5
    race(lambda: Workspace(ws.root).open_job({"a": 1}).update_statepoint({"by": "other"}))
    with pytest.raises(JobRemovedError, match="moved or removed by another process") as info:
        job.update_statepoint({"by": "me"})
    # signac raises KeyError for a state point change of a vanished job.
    assert isinstance(info.value, (KeyError, FileNotFoundError, WorkspaceError))
    fresh = Workspace(ws.root)
    (moved,) = fresh.find_jobs()
    assert moved.statepoint() == {"a": 1, "by": "other"} and moved.doc.x == 5
    assert _folders_hash_to_their_names(ws.workspace) == []
    signac.get_project(ws.root).check()


def test_losing_move_onto_the_same_state_point_is_destination_exists(
    ws: Workspace, race: Any
) -> None:
    job = ws.open_job({"a": 1}).init()
    race(lambda: Workspace(ws.root).open_job({"a": 1}).update_statepoint({"b": 2}))
    with pytest.raises(DestinationExistsError):
        job.update_statepoint({"b": 2})
    assert [j.statepoint() for j in Workspace(ws.root)] == [{"a": 1, "b": 2}]


def test_interrupted_move_uses_only_its_own_pending_file(ws: Workspace) -> None:
    # A move killed right after its rename, in a folder that also carries the pending
    # file of a move that lost the race: only the one hashing to the folder is used.
    job = ws.open_job({"a": 1}).init()
    old = job.path
    Path(old, f"{MOVE_FILENAME}.99999.1").write_text(json.dumps({"a": 1, "by": "loser"}))
    Path(old, f"{MOVE_FILENAME}.99999.2").write_text(json.dumps({"a": 1, "by": "winner"}))
    new_id = calc_id({"a": 1, "by": "winner"})
    os.rename(old, os.path.join(ws.workspace, new_id))
    fresh = Workspace(ws.root)
    assert fresh.find_job_ids({"by": "winner"}) == [new_id]
    assert fresh.open_job(id=new_id).statepoint() == {"a": 1, "by": "winner"}
    signac.get_project(ws.root).check()
    assert _folders_hash_to_their_names(ws.workspace) == []


def test_pending_file_of_a_live_mover_is_kept_by_check(ws: Workspace) -> None:
    job = ws.open_job({"a": 1}).init()
    mine = Path(job.fn(f"{MOVE_FILENAME}.{os.getpid()}.7"))
    mine.write_text(json.dumps({"a": 2}))
    assert Workspace(ws.root).check() == []
    assert mine.exists()
