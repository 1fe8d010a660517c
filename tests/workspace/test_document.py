"""Job documents: persistence, nesting, atomic writes and the lock across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from plams_cli.errors import WorkspaceError
from plams_cli.workspace import Workspace


def test_document_persists(ws: Workspace) -> None:
    job = ws.open_job({"a": 1})
    job.doc.x = 1
    job.doc["y"] = {"z": [1, 2]}
    job.doc.y.z.append(3)
    job.doc.y.w = "s"
    assert job.doc.get("missing", 7) == 7
    with open(job.fn("signac_job_document.json")) as file:
        assert json.load(file) == {"x": 1, "y": {"z": [1, 2, 3], "w": "s"}}
    again = Workspace(ws.root).open_job({"a": 1})
    assert again.doc() == {"x": 1, "y": {"z": [1, 2, 3], "w": "s"}}


def test_document_sees_changes_of_other_handles(ws: Workspace) -> None:
    one = ws.open_job({"a": 1})
    two = Workspace(ws.root).open_job({"a": 1})
    one.doc.n = 1
    assert two.doc.n == 1
    del two.doc.n
    assert "n" not in one.doc


def test_document_write_leaves_no_temp_files(ws: Workspace) -> None:
    job = ws.open_job({"a": 1})
    for i in range(5):
        job.doc.i = i
    names = sorted(os.listdir(job.path))
    assert names == [".signac_job_document.json.lock", "signac_job_document.json", "signac_statepoint.json"]


def test_corrupt_document_is_reported(ws: Workspace) -> None:
    job = ws.open_job({"a": 1}).init()
    Path(job.fn("signac_job_document.json")).write_text("{not json")
    with pytest.raises(WorkspaceError, match="not valid JSON"):
        job.doc.get("x")


def test_document_assignment_replaces(ws: Workspace) -> None:
    job = ws.open_job({"a": 1})
    job.doc.x = 1
    job.document = {"y": 2}
    assert job.doc() == {"y": 2}


def test_modify_and_locked(ws: Workspace) -> None:
    job = ws.open_job({"a": 1})
    job.doc.modify(lambda d: d.update(n=d.get("n", 0) + 1))
    with job.doc.locked():
        job.doc.n = job.doc.n + 1
        with job.doc.locked():  # re-entrant
            job.doc.n += 1
    assert job.doc.n == 3


_WORKER = """
import sys
from plams_cli.workspace import Workspace
job = Workspace(sys.argv[1]).open_job({"shared": True})
for _ in range(int(sys.argv[2])):
    with job.doc.locked():
        job.doc.count = job.doc.get("count", 0) + 1
"""


def test_locked_increments_from_four_processes(ws: Workspace) -> None:
    ws.open_job({"shared": True}).init()
    procs = [
        subprocess.Popen([sys.executable, "-c", _WORKER, ws.root, "300"]) for _ in range(4)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0, 0]
    assert ws.open_job({"shared": True}).doc.count == 1200
