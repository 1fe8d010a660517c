"""A Job object whose folder was moved or removed elsewhere never writes a folder without state point."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from plams_cli.workspace import Job, JobRemovedError, Workspace, calc_id
from plams_cli.workspace.document import LOCK_FILENAME


def _remove_elsewhere(ws: Workspace, job: Job) -> None:
    Workspace(ws.root).open_job(job.statepoint()).remove()


def _move_elsewhere(ws: Workspace, job: Job) -> None:
    Workspace(ws.root).open_job(job.statepoint()).sp.a = 2


def _used(ws: Workspace) -> Job:
    job = ws.open_job({"a": 1}).init()
    job.doc.keep = "me"
    job.data["v"] = 1.5
    return job


CHANGES = [_remove_elsewhere, _move_elsewhere]
CHANGE_IDS = ["removed", "moved"]

WRITES: list[Callable[[Job], Any]] = [
    lambda job: setattr(job.doc, "x", 1),
    lambda job: job.doc.update(x=1),
    lambda job: job.doc.setdefault("x", 1),
    lambda job: setattr(job, "doc", {"x": 1}),
    lambda job: job.data.__setitem__("y", np.arange(3)),
    lambda job: job.data.__enter__(),
    lambda job: job.update_statepoint({"b": 3}),
    lambda job: job.sp.__setattr__("b", 3),
    lambda job: setattr(job, "sp", {"a": 1, "b": 3}),
]
WRITE_IDS = ["doc-attr", "doc-update", "doc-setdefault", "doc-assign", "data-item", "data-with",
             "update_statepoint", "sp-attr", "sp-assign"]


@pytest.mark.parametrize("change", CHANGES, ids=CHANGE_IDS)
@pytest.mark.parametrize("write", WRITES, ids=WRITE_IDS)
def test_write_through_stale_job_raises_and_creates_nothing(
    ws: Workspace, change: Callable[[Workspace, Job], None], write: Callable[[Job], Any]
) -> None:
    job = _used(ws)
    change(ws, job)
    before = sorted(os.listdir(ws.workspace))
    with pytest.raises(JobRemovedError) as info:
        write(job)
    # signac raises FileNotFoundError for the document, KeyError for the state point.
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, KeyError)
    assert "moved or removed" in str(info.value)
    assert sorted(os.listdir(ws.workspace)) == before
    assert not os.path.exists(job.path)
    Workspace(ws.root).check()


@pytest.mark.parametrize("change", CHANGES, ids=CHANGE_IDS)
def test_reading_document_of_stale_job_raises(
    ws: Workspace, change: Callable[[Workspace, Job], None]
) -> None:
    job = _used(ws)
    change(ws, job)
    with pytest.raises(JobRemovedError):
        job.doc.get("keep")


def test_job_from_a_search_is_stale_once_removed(ws: Workspace) -> None:
    _used(ws)
    (job,) = ws.find_jobs()
    Workspace(ws.root).open_job(id=job.id).remove()
    with pytest.raises(JobRemovedError):
        job.doc.x = 1
    with pytest.raises(JobRemovedError):
        job.sp.b = 3
    assert os.listdir(ws.workspace) == []


def test_folder_made_by_the_file_lock_is_taken_away(ws: Workspace) -> None:
    # The job was removed and the file lock made its folder again before the check.
    job = _used(ws)
    doc = job.doc
    _remove_elsewhere(ws, job)
    os.mkdir(job.path)
    open(job.fn(LOCK_FILENAME), "w").close()
    with pytest.raises(JobRemovedError):
        doc.x = 1
    assert not os.path.exists(job.path)


@pytest.mark.parametrize("change", CHANGES, ids=CHANGE_IDS)
def test_init_creates_a_stale_job_anew(ws: Workspace, change: Callable[[Workspace, Job], None]) -> None:
    job = _used(ws)
    change(ws, job)
    job.init()  # explicit, as signac's init: the job is made again, state point first
    job.doc.x = 1
    fresh = Workspace(ws.root).open_job(id=calc_id({"a": 1}))
    assert fresh.statepoint() == {"a": 1} and fresh.doc() == {"x": 1}
    Workspace(ws.root).check()


def test_never_created_job_still_moves_in_memory(ws: Workspace) -> None:
    job = ws.open_job({"a": 1})
    job.sp.b = 2
    assert job.id == calc_id({"a": 1, "b": 2}) and not job.exists()
    job.doc.x = 1  # creates it, state point first
    assert Workspace(ws.root).open_job(id=job.id).statepoint() == {"a": 1, "b": 2}


def test_removed_by_the_same_object_is_created_again(ws: Workspace) -> None:
    job = _used(ws)
    job.remove()
    job.doc.x = 1
    assert Workspace(ws.root).open_job(id=job.id).statepoint() == {"a": 1}
