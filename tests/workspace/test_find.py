"""find_jobs with MongoDB-style filters, and the state point cache."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from plams_cli.workspace import FilterError, Workspace


@pytest.fixture
def populated(ws: Workspace) -> Workspace:
    for i in range(6):
        sp = {"i": i, "even": i % 2 == 0, "name": f"n{i}", "nested": {"x": i * 0.5}}
        if i == 5:
            sp["extra"] = [1, 2]
        job = ws.open_job(sp).init()
        job.doc.score = 10 - i
    return ws


CASES = [
    ({"i": 3}, [3]),
    ({"i": 3.0}, [3]),
    ({"even": True}, [0, 2, 4]),
    ({"even": 1}, []),
    ({"nested.x": 1.0}, [2]),
    ({"nested": {"x": 1.0}}, [2]),
    ({"sp.i": 1}, [1]),
    ({"i": {"$eq": 2}}, [2]),
    ({"i": {"$ne": 2}}, [0, 1, 3, 4, 5]),
    ({"i": {"$gt": 3}}, [4, 5]),
    ({"i": {"$gte": 3}}, [3, 4, 5]),
    ({"i": {"$lt": 1}}, [0]),
    ({"i": {"$lte": 1}}, [0, 1]),
    ({"i": {"$in": [1, 4, 9]}}, [1, 4]),
    ({"i": {"$nin": [1, 4]}}, [0, 2, 3, 5]),
    ({"name": {"$regex": "^n[2-3]$"}}, [2, 3]),
    ({"extra": {"$exists": True}}, [5]),
    ({"extra": {"$exists": False}}, [0, 1, 2, 3, 4]),
    ({"extra": {"$ne": 7}}, [5]),
    ({"extra": [1, 2]}, [5]),
    ({"$and": [{"i": {"$gt": 0}}, {"even": True}]}, [2, 4]),
    ({"$or": [{"i": 0}, {"name": "n5"}]}, [0, 5]),
    ({"$not": {"even": True}}, [1, 3, 5]),
    ({"i": {"$gt": 1, "$lt": 4}}, [2, 3]),
    ({"doc.score": {"$gte": 8}}, [0, 1, 2]),
    ({"doc.score": 10, "i": 0}, [0]),
    ({"name": {"$gt": 3}}, []),
    ({}, [0, 1, 2, 3, 4, 5]),
]


@pytest.mark.parametrize(("filter_", "expected"), CASES, ids=[repr(c[0]) for c in CASES])
def test_find_jobs(populated: Workspace, filter_: dict, expected: list[int]) -> None:
    assert sorted(job.sp.i for job in populated.find_jobs(filter_)) == expected


@pytest.mark.parametrize(
    "filter_",
    [{"i": {"$bogus": 1}}, {"$or": {"i": 1}}, {"i": {"$exists": 1}}, {"name": {"$regex": "("}}],
    ids=["unknown-op", "or-not-list", "exists-not-bool", "bad-regex"],
)
def test_bad_filters(populated: Workspace, filter_: dict) -> None:
    with pytest.raises(FilterError):
        populated.find_jobs(filter_)


def test_cache_follows_the_folder_listing(populated: Workspace) -> None:
    assert len(populated.find_jobs()) == 6
    populated.update_cache()
    assert os.path.isfile(populated.fn(".signac/statepoint_cache.json.gz"))
    populated.find_jobs({"i": 0})[0].remove()
    new = populated.open_job({"i": 99}).init()
    fresh = Workspace(populated.root)
    assert sorted(j.sp.i for j in fresh.find_jobs()) == [1, 2, 3, 4, 5, 99]
    assert fresh.find_job_ids({"i": 99}) == [new.id]


def test_damaged_cache_files_are_ignored(populated: Workspace) -> None:
    populated.update_cache()
    for name in ("plams_statepoint_cache", "statepoint_cache.json.gz"):
        with open(populated.fn(".signac/" + name), "wb") as file:
            file.write(b"garbage")
    with open(populated.fn(".signac/plams_statepoint_journal"), "w") as file:
        file.write('"0123": {"torn')
    assert len(Workspace(populated.root).find_jobs({"i": {"$gte": 0}})) == 6


def test_fresh_process_sees_jobs_created_elsewhere(populated: Workspace) -> None:
    code = (
        "import sys; from plams_cli.workspace import Workspace;"
        "print(len(Workspace(sys.argv[1]).find_jobs({'even': False})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, populated.root], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "3"
