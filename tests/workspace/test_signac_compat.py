"""Signac 2 opens our workspaces and we open signac's, with the same ids and data."""

from __future__ import annotations

from pathlib import Path

import pytest

from plams_cli.workspace import Workspace

signac = pytest.importorskip("signac")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

STATEPOINTS = [{"a": 1}, {"a": 2, "b": {"c": [1, 2.5]}}, {"s": "x", "t": True, "n": None}]


def test_signac_workspace_opens_here(tmp_path: Path) -> None:
    project = signac.init_project(str(tmp_path))
    ids = {}
    for sp in STATEPOINTS:
        job = project.open_job(sp).init()
        job.doc.value = job.id[:4]
        ids[job.id] = sp
    ws = Workspace(tmp_path)
    assert sorted(ws.find_job_ids()) == sorted(ids)
    for job in ws:
        assert job.statepoint() == ids[job.id]
        assert job.doc.value == job.id[:4]
    assert ws.find_job_ids({"b.c": [1, 2.5]}) == [project.open_job(STATEPOINTS[1]).id]
    assert ws.open_job({"a": 1}).id == "42b7b4f2921788ea14dac5566e6f06d0"


def test_our_workspace_opens_in_signac(tmp_path: Path) -> None:
    ws = Workspace(tmp_path, create=True)
    for sp in STATEPOINTS:
        job = ws.open_job(sp).init()
        job.doc.value = job.id[:4]
    ws.update_cache()
    project = signac.get_project(str(tmp_path))
    found = {job.id: job for job in project}
    assert sorted(found) == ws.find_job_ids()
    for job_id, job in found.items():
        assert job.statepoint() == ws.open_job(id=job_id).statepoint()
        assert job.doc["value"] == job_id[:4]
    assert len(project.find_jobs({"a": 2})) == 1


def test_statepoint_move_interoperates(tmp_path: Path) -> None:
    ws = Workspace(tmp_path, create=True)
    job = ws.open_job({"a": 1}).init()
    job.sp.a = 3
    project = signac.get_project(str(tmp_path))
    assert [j.id for j in project] == [job.id]
    assert project.open_job(id=job.id).statepoint() == {"a": 3}
