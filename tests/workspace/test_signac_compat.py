"""Signac 2 opens our workspaces and we open signac's, with the same ids and data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import signac  # a test dependency: missing, the tests fail rather than skip

from plams_cli.errors import JobsCorruptedError
from plams_cli.workspace import FilterError, Workspace

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

STATEPOINTS: list[dict[str, Any]] = [{"a": 1}, {"a": 2, "b": {"c": [1, 2.5]}}, {"s": "x", "t": True, "n": None}]


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


def test_hdf5_data_written_by_signac_reads_here(tmp_path: Path) -> None:
    project = signac.init_project(str(tmp_path))
    job = project.open_job({"a": 1}).init()
    job.data["x"] = 1.5
    job.data["s"] = "text"
    job.data["n"] = None
    job.data["arr"] = np.arange(6).reshape(2, 3)
    with pytest.warns(UserWarning, match="not officially supported"):
        job.data["names"] = ["a", "b"]  # h5py makes it a string array, as here
    job.data["group"] = {"k": 2, "inner": {"q": "w"}}
    job.stores["extra"]["e"] = -1
    ours = Workspace(tmp_path).open_job(id=job.id)
    assert ours.data["x"] == 1.5 and ours.data["s"] == "text" and ours.data["n"] is None
    assert ours.data["arr"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert list(ours.data["names"]) == ["a", "b"]
    assert ours.data["group"]["k"] == 2 and ours.data["group/inner/q"] == "w"
    assert ours.stores["extra"]["e"] == -1 and sorted(ours.stores) == ["extra", "signac_data"]


def test_hdf5_data_written_here_reads_in_signac(tmp_path: Path) -> None:
    ws = Workspace(tmp_path, create=True)
    job = ws.open_job({"a": 1})
    job.data["x"] = 1.5
    job.data["s"] = "text"
    job.data["n"] = None
    job.data["arr"] = np.arange(6).reshape(2, 3)
    job.data["names"] = ["a", "b"]
    job.data["group"] = {"k": 2, "inner": {"q": "w"}}
    job.stores["extra"]["e"] = -1
    theirs = signac.get_project(str(tmp_path)).open_job(id=job.id)
    with theirs.data:
        assert theirs.data["x"] == 1.5 and theirs.data["s"] == "text" and theirs.data["n"] is None
        assert theirs.data["arr"][()].tolist() == [[0, 1, 2], [3, 4, 5]]
        assert isinstance(theirs.data["names"], h5py.Dataset)
        assert list(theirs.data["names"].asstr()[()]) == ["a", "b"]
        assert theirs.data["group"]["k"] == 2 and theirs.data["group"]["inner"]["q"] == "w"
    with theirs.stores["extra"] as extra:
        assert extra["e"] == -1


def test_corruption_is_reported_by_both(tmp_path: Path) -> None:
    ws = Workspace(tmp_path, create=True)
    good = ws.open_job({"a": 1}).init()
    bad = ws.open_job({"a": 2}).init()
    Path(bad.fn("signac_statepoint.json")).write_text("corrupted")
    project = signac.get_project(str(tmp_path))
    assert len(project) == len(ws) == len(list(project)) == len(list(ws)) == 2
    with pytest.raises(signac.errors.JobsCorruptedError):
        project.check()
    with pytest.raises(JobsCorruptedError) as info:
        ws.check()
    assert info.value.job_ids == [bad.id]
    with pytest.raises(JobsCorruptedError):
        ws.find_jobs({"a": 1})
    assert ws.open_job(id=good.id).statepoint() == {"a": 1}


# ---------------------------------------------------------------------- filters as signac
# One data space with every kind of value: ints, floats, booleans, strings, None, lists,
# nested mappings, missing keys; some jobs with documents, one with an empty one.
BATTERY_STATEPOINTS: list[dict[str, Any]] = [
    {"i": 1, "f": 1.0, "b": True, "s": "a", "n": None, "l": [1, 2],
     "d": {"x": 1, "y": {"z": "deep"}}, "m": 1},
    {"i": 2, "f": 2.5, "b": False, "s": "b", "l": [1, 2, 3], "d": {"x": 2}, "m": "1"},
    {"i": True, "f": 0.0, "s": "abc", "l": [], "d": {}, "m": None},
    {"i": 1.0, "f": -1, "s": "", "n": None, "l": ["a", "b"], "d": {"x": "1"}},
    {"i": 0, "b": True, "s": "ABC", "l": [[1, 2], [3]], "d": {"x": None}, "m": [1]},
    {"i": -2, "f": 1e-10, "n": 0, "l": [{"a": 1}], "d": {"x": [1, 2]}},
    {"i": 3, "f": 3.0000000001, "s": "x1", "l": [1.0, 2.0], "d": {"x": 1.0}},
    {"other": "only"},
    {"i": False, "s": "a.b", "l": [True, 2], "d": {"y": {"z": 1}}, "m": {"k": 1}},
    {"i": 10, "f": 1099511627776, "s": "10"},
    {"i": "1", "s": "zz", "n": False},
    {"i": [1], "f": -0.5, "n": [None]},
]  # fmt: skip
BATTERY_DOCUMENTS: dict[int, dict[str, Any]] = {
    0: {"score": 10, "tag": "x", "nested": {"a": 1}},
    1: {"score": 2.5, "tag": "y"},
    2: {},
    4: {"score": True, "tag": "x", "nested": {"a": 2}},
    6: {"score": "high"},
    9: {"nested": {"a": 1, "b": [1, 2]}},
}
BATTERY: list[dict[str, Any]] = [
    # equality: 1 == 1.0 == True, lists as tuples, nested mappings as dotted keys
    {"i": 1}, {"i": 1.0}, {"i": True}, {"i": 0}, {"i": False}, {"i": "1"}, {"i": [1]},
    {"f": 1}, {"f": 2.5}, {"f": 1099511627776}, {"b": True}, {"b": 1}, {"s": "a"},
    {"n": None}, {"l": [1, 2]}, {"l": [1.0, 2.0]}, {"l": []}, {"l": ["a", "b"]},
    {"l": [[1, 2], [3]]}, {"l": [{"a": 1}]}, {"l": [True, 2]}, {"d.x": 1}, {"d": {"x": 1}},
    {"d.y.z": "deep"}, {"sp.d.x": 1.0}, {"d": {"y": {"z": 1}}, "s": "a.b"}, {"m": {"k": 1}},
    # comparisons, also where signac raises for mixed types
    {"f": {"$gt": 1}}, {"f": {"$gte": 1}}, {"f": {"$lt": 1}}, {"f": {"$lte": 0}},
    {"s": {"$gt": "a"}}, {"s": {"$lte": "ab"}}, {"f": {"$gt": 0, "$lt": 3}},
    {"l": {"$gt": [1]}}, {"i": {"$gt": 0}}, {"m": {"$lt": 1}}, {"d": {"x": {"$gte": 1}}},
    {"$gt": 1},
    # the other operators
    {"i": {"$eq": 1}}, {"i": {"$ne": 1}}, {"n": {"$ne": None}}, {"l": {"$ne": [1, 2]}},
    {"i": {"$in": [1, "1"]}}, {"i": {"$nin": [0, 1]}}, {"l": {"$in": [[1, 2], []]}},
    {"d.x": {"$in": [1, None]}}, {"d.x": {"$nin": [1, None]}},
    {"s": {"$regex": "^a"}}, {"s": {"$regex": "B"}},
    {"n": {"$exists": True}}, {"n": {"$exists": False}}, {"d.y": {"$exists": True}},
    {"d": {"$exists": True}}, {"other": {"$exists": True}}, {"sp": {"$exists": True}},
    {"i": {"$type": "int"}}, {"i": {"$type": "bool"}}, {"i": {"$type": "float"}},
    {"l": {"$type": "list"}}, {"n": {"$type": "null"}}, {"s": {"$type": "str"}},
    {"m": {"$type": "str"}},
    {"f": {"$near": [1, 0.1]}}, {"f": {"$near": 3}}, {"f": {"$near": [0, 0, 1e-9]}},
    {"s": {"$near": 1}},
    # logical operators, including signac's rule for reading documents
    {"$and": [{"f": {"$gt": 0}}, {"b": True}]}, {"$or": [{"i": 2}, {"s": "abc"}]},
    {"$not": {"i": 1}}, {"$not": {"doc.score": 10}}, {"$or": [{"doc.tag": "x"}, {"s": "b"}]},
    {"$and": [{"$or": [{"i": 1}, {"i": 2}]}, {"$not": {"b": False}}]},
    # documents
    {"doc.score": {"$gt": 5}}, {"doc.score": 10}, {"doc.tag": "x"},
    {"doc": {"nested": {"a": 1}}}, {"doc.missing": {"$exists": False}},
    {"doc": {"$exists": True}}, {"doc.score": {"$exists": False}}, {"doc.nested.b": [1, 2]},
    {"sp.s": "a", "doc.tag": "x"},
    # evaluation order: the first expression matching nothing stops the search
    {"s": "nonexistent", "m": {"$gt": 1}}, {"m": {"$gt": 1}, "s": "nonexistent"},
    # malformed for signac too
    {"d": {}}, {"i": {"$bogus": 1}}, {"i": {"$exists": 1}}, {"i": {"$near": [1, "x"]}},
]  # fmt: skip


@pytest.fixture(scope="module")
def battery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Workspace]]:
    root = tmp_path_factory.mktemp("battery")
    project = signac.init_project(str(root))
    for row, sp in enumerate(BATTERY_STATEPOINTS):
        job = project.open_job(sp).init()
        if row in BATTERY_DOCUMENTS:
            job.document.reset(BATTERY_DOCUMENTS[row])
    yield project, Workspace(root)


def _signac_ids(project: Any, filter_: dict[str, Any]) -> set[str] | None:
    try:
        return {job.id for job in project.find_jobs(filter_)}
    except (TypeError, ValueError, KeyError, AttributeError):
        return None  # signac refuses the filter on this data


def _our_ids(ws: Workspace, filter_: dict[str, Any]) -> set[str] | None:
    try:
        return set(ws.find_job_ids(filter_))
    except FilterError:
        return None


@pytest.mark.parametrize("filter_", BATTERY, ids=[repr(f) for f in BATTERY])
@pytest.mark.parametrize("cache", ["from-folders", "from-cache"])
def test_filters_find_what_signac_finds(
    battery: tuple[Any, Workspace], filter_: dict[str, Any], cache: str
) -> None:
    project, ws = battery
    if cache == "from-cache":
        ws.update_cache()
    else:
        for name in ("plams_statepoint_cache", "plams_statepoint_journal"):
            Path(ws.fn(".signac/" + name)).unlink(missing_ok=True)
    expected = _signac_ids(project, filter_)
    assert _our_ids(Workspace(ws.root), filter_) == expected
    if expected is not None:
        assert {job.id for job in Workspace(ws.root).find_jobs(filter_)} == expected


def test_battery_covers_matches_and_errors(battery: tuple[Any, Workspace]) -> None:
    project, _ = battery
    results = [_signac_ids(project, f) for f in BATTERY]
    assert len(BATTERY) >= 40
    assert sum(r is None for r in results) >= 8 and sum(bool(r) for r in results) >= 50
