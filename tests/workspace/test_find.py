"""find_jobs with MongoDB-style filters, and the state point cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from plams_cli.errors import JobsCorruptedError, PlamsError
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
    ({"even": 1}, [0, 2, 4]),  # as in signac: True == 1
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
    ({"nested": {"x": {"$gte": 1.0}}, "i": {"$lt": 3}}, [2]),
    ({"nested": {"x": 0.5, "$exists": True}}, [1]),  # keys and operators mixed, as signac allows
    ({}, [0, 1, 2, 3, 4, 5]),
]


@pytest.mark.parametrize(("filter_", "expected"), CASES, ids=[repr(c[0]) for c in CASES])
def test_find_jobs(populated: Workspace, filter_: dict[str, Any], expected: list[int]) -> None:
    assert sorted(job.sp.i for job in populated.find_jobs(filter_)) == expected


BAD_FILTERS = [
    ({"i": {"$bogus": 1}}, r"unknown operator '\$bogus' under 'i'; known: \$eq", "unknown-op"),
    ({"$or": {"i": 1}}, r"\$or needs a list", "or-not-list"),
    ({"$and": []}, r"\$and needs at least one filter", "and-empty"),
    ({"$or": [1]}, "each filter in \\$or must be a JSON object", "or-item-not-object"),
    ({"$not": [{"i": 1}]}, "argument of \\$not must be a JSON object", "not-not-object"),
    ({"i": {"$exists": 1}}, "needs true or false", "exists-not-bool"),
    ({"name": {"$regex": "("}}, "not a valid regular expression", "bad-regex"),
    ({"name": {"$regex": 1}}, r"\$regex under 'name' needs a string", "regex-not-string"),
    ({"i": {"$near": [1, "x"]}}, "rel_tol must be a number, not a string", "near-tolerance-string"),
    ({"i": {"$near": [1, None]}}, "rel_tol must be a number, not null", "near-tolerance-null"),
    ({"i": {"$near": "x"}}, "value must be a number", "near-not-number"),
    ({"i": {"$near": []}}, "1 to 3 numbers", "near-empty-list"),
    ({"i": {"$near": [1, 0.1, -1]}}, "abs_tol must be a number >= 0", "near-negative-tolerance"),
    ({"i": {"$type": []}}, r"\$type under 'i' needs one of 'int'", "type-list"),
    ({"i": {"$type": "dict"}}, "needs one of", "type-unknown"),
    ({"i": {"$in": 3}}, r"\$in under 'i' needs a list", "in-not-list"),
    ({"i": {"$nin": "ab"}}, r"\$nin under 'i' needs a list", "nin-not-list"),
    ({"i": {"$gt": None}}, "needs a number, string or list, not null", "gt-null"),
    ({"i": {"$where": "lambda x: True"}}, "not supported", "where-refused"),
    ({"i": {"$gt": {"a": 1}}}, "operator must come last", "operator-placement"),
    ({"i.$gt.$lt": 1}, "one operator per key", "two-operators"),
    ({"i": {}}, "empty object under 'i'", "empty-object"),
    ({1: 2}, "keys must be strings", "non-string-key"),
    ({"i": object()}, "JSON-encodable", "not-json"),
    ({"i": 10**400}, "too large", "huge-number"),
    ({"name": {"$gt": 3}}, r"\$gt under 'name' cannot compare 'n\d' \(str\) of a job with 3 \(int\)", "gt-str-vs-int"),
    ({"name": {"$near": 3}}, "needs numbers, but a job has", "near-on-strings"),
    ({"nested": {"$lt": 1}}, "cannot compare a mapping", "lt-on-mapping"),
]


@pytest.mark.parametrize(
    ("filter_", "message"), [c[:2] for c in BAD_FILTERS], ids=[c[2] for c in BAD_FILTERS]
)
def test_bad_filters(populated: Workspace, filter_: dict[str, Any], message: str) -> None:
    with pytest.raises(FilterError, match=message) as info:
        populated.find_jobs(filter_)
    assert isinstance(info.value, PlamsError) and isinstance(info.value, ValueError)


def test_data_dependent_error_needs_the_data(populated: Workspace) -> None:
    # signac stops at the first expression that matches nothing, so the comparison of
    # strings with a number after it is never made: no error, as in signac.
    assert populated.find_jobs({"i": 99, "name": {"$gt": 3}}) == []
    with pytest.raises(FilterError):
        populated.find_jobs({"name": {"$gt": 3}, "i": 99})


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


@pytest.fixture
def broken(populated: Workspace) -> tuple[Workspace, str]:
    """The populated workspace with an empty job folder, after its cache was written."""
    populated.update_cache()
    empty = "0123456789abcdef0123456789abcdef"
    os.mkdir(os.path.join(populated.workspace, empty))
    return Workspace(populated.root), empty


def test_empty_folder_counts_everywhere_and_is_reported(broken: tuple[Workspace, str]) -> None:
    ws, empty = broken
    assert len(ws) == 7 == len(list(ws)) == len(ws.find_jobs()) == len(ws.find_jobs({}))
    assert empty in ws.find_job_ids()
    with pytest.raises(JobsCorruptedError) as info:
        ws.find_jobs({"i": 1})
    assert info.value.job_ids == [empty] and empty in str(info.value)
    bad = ws.open_job(id=empty)
    with pytest.raises(JobsCorruptedError):
        bad.statepoint()
    with pytest.raises(JobsCorruptedError):
        ws.check()
    # Every other job still reads.
    assert sorted(j.sp.i for j in ws if j.id != empty) == list(range(6))


@pytest.mark.parametrize(
    "content",
    ["corrupted", '{"i": 99}', ""],
    ids=["junk", "another-statepoint", "empty-file"],
)
def test_overwritten_statepoint_is_never_served_from_the_cache(
    populated: Workspace, content: str
) -> None:
    job = populated.find_jobs({"i": 2})[0]
    populated.update_cache()
    # Warm both the cache file and a workspace's memory, then overwrite behind their back.
    warm = Workspace(populated.root)
    assert sorted(j.sp.i for j in warm) == list(range(6))
    Path(job.fn("signac_statepoint.json")).write_text(content)
    for ws in (warm, Workspace(populated.root)):
        assert len(ws) == len(list(ws)) == len(ws.find_jobs()) == 6
        with pytest.raises(JobsCorruptedError) as info:
            ws.find_jobs({"i": {"$gte": 0}})
        assert info.value.job_ids == [job.id]
        with pytest.raises(JobsCorruptedError):
            ws.open_job(id=job.id).statepoint()
        with pytest.raises(JobsCorruptedError):
            [j.statepoint() for j in ws]


def test_same_size_rewrite_with_old_mtime_is_noticed(populated: Workspace) -> None:
    job = populated.find_jobs({"i": 2})[0]
    populated.update_cache()
    path = job.fn("signac_statepoint.json")
    before = os.stat(path)
    text = Path(path).read_text()
    with open(path, "r+") as file:  # same inode, same size, then the old times put back
        file.write(text.replace('"i": 2', '"i": 7'))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(JobsCorruptedError):
        Workspace(populated.root).find_jobs({"i": 7})
