"""HDF5 job data through h5py."""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Any

import h5py
import numpy as np
import numpy.typing as npt
import pytest

from plams_cli.workspace import Workspace


def test_data_scalars_strings_arrays_groups(ws: Workspace) -> None:
    job = ws.open_job({"a": 1})
    job.data["x"] = 1.5
    job.data["s"] = "text"
    job.data["n"] = None
    job.data["arr"] = np.arange(10)
    job.data["group/sub/v"] = 3
    job.data["d"] = {"k": 1, "inner": {"q": "w"}}
    assert job.isfile("signac_data.h5")
    assert job.data["x"] == 1.5 and job.data.s == "text" and job.data["n"] is None
    assert job.data["group/sub"]["v"] == 3 and job.data["d"]["inner"]["q"] == "w"
    assert set(job.data.keys()) == {"x", "s", "n", "arr", "group", "d"}
    assert "group/sub/v" in job.data and "nope" not in job.data
    assert job.data.get("nope", 4) == 4
    copy = job.data["arr"]  # file closed: a NumPy copy
    assert isinstance(copy, np.ndarray) and copy.tolist() == list(range(10))


def test_with_data_returns_datasets_by_reference(ws: Workspace) -> None:
    job = ws.open_job({"a": 1})
    job.data["arr"] = np.arange(100).reshape(10, 10)
    with job.data:
        ds = job.data["arr"]
        assert isinstance(ds, h5py.Dataset)
        assert ds[2:4, 1].tolist() == [21, 31]
        ds[0, 0] = -1
    assert job.data["arr"][0, 0] == -1


def test_named_stores(ws: Workspace) -> None:
    job = ws.open_job({"a": 1})
    job.stores["results"]["e"] = 2.0
    assert job.isfile("results.h5")
    assert "results" in job.stores and job.stores.results["e"] == 2.0
    assert list(job.stores) == ["results"]


def test_delete_and_clear(ws: Workspace) -> None:
    job = ws.open_job({"a": 1})
    job.data["x"] = 1
    job.data["y"] = 2
    del job.data["x"]
    assert list(job.data) == ["y"]
    job.data.clear()
    assert len(job.data) == 0


def test_list_of_strings_is_a_string_array(ws: Workspace) -> None:
    job = ws.open_job({"a": 1})
    job.data["names"] = ["a", "bé", ""]
    job.data["pair"] = ("x", "y")
    assert list(job.data["names"]) == ["a", "bé", ""] and list(job.data["pair"]) == ["x", "y"]
    with job.data:
        ds = job.data["names"]
        assert isinstance(ds, h5py.Dataset) and h5py.check_dtype(vlen=ds.dtype) is str
        assert list(ds.asstr()[()]) == ["a", "bé", ""]


@pytest.mark.parametrize(
    "value", [["a", 1], [[1, 2], [3]], [{"k": 1}]], ids=["mixed", "ragged", "of-dicts"]
)
def test_unstorable_list_is_a_clear_type_error(ws: Workspace, value: list[Any]) -> None:
    job = ws.open_job({"a": 1})
    job.data["kept"] = 1
    with pytest.raises(TypeError, match="cannot store the list under 'bad' in HDF5: it must hold only"):
        job.data["bad"] = value
    assert list(job.data) == ["kept"]


BAD_NEW_VALUES = [
    ([[1], [1, 2]], "ragged-list"),
    ({1, 2}, "set"),
    ({"ok": 1, "bad": object()}, "group-with-bad-value"),
    ({"ok": 1, "a.b": 2}, "group-with-dotted-key"),
    ({"ok": {"deeper": [[1], [2, 3]]}}, "nested-bad-list"),
]


@pytest.mark.parametrize("old", [np.arange(3), {"g": 1, "h": {"i": "x"}}], ids=["dataset", "group"])
@pytest.mark.parametrize("new", [v for v, _ in BAD_NEW_VALUES], ids=[i for _, i in BAD_NEW_VALUES])
@pytest.mark.parametrize("opened", [False, True], ids=["closed", "in-with"])
def test_failed_overwrite_keeps_the_old_value(ws: Workspace, old: object, new: object, opened: bool) -> None:
    job = ws.open_job({"a": 1})
    job.data["x"] = old
    job.data["other"] = 2
    with job.data if opened else contextlib.nullcontext():
        with pytest.raises((TypeError, KeyError)):
            job.data["x"] = new
    assert sorted(job.data) == ["other", "x"]  # no half-written value under any name
    if isinstance(old, dict):
        assert job.data["x"]["g"] == 1 and job.data["x/h/i"] == "x" and sorted(job.data["x"]) == ["g", "h"]
    else:
        assert job.data["x"].tolist() == [0, 1, 2]


def test_failed_new_group_leaves_nothing(ws: Workspace) -> None:
    job = ws.open_job({"a": 1})
    with pytest.raises(TypeError, match="'x/bad'"):
        job.data["x"] = {"ok": 1, "bad": object()}
    assert list(job.data) == []


def test_overwrite_with_a_part_of_the_old_value(ws: Workspace) -> None:
    job = ws.open_job({"a": 1})
    job.data["x"] = {"sub": {"v": np.arange(3)}, "w": 1}
    with job.data:
        job.data["x"] = job.data["x/sub"]
    assert sorted(job.data["x"]) == ["v"] and job.data["x/v"].tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    "value",
    [np.array(["x", "yy"]), np.array([["a", "bé"], ["c", ""]]), [np.str_("p"), np.str_("q")]],
    ids=["unicode-array", "unicode-2d", "list-of-numpy-str"],
)
def test_numpy_unicode_is_stored_as_strings(ws: Workspace, value: npt.ArrayLike) -> None:
    job = ws.open_job({"a": 1})
    job.data["x"] = np.arange(3)
    job.data["x"] = value
    back = job.data["x"]
    assert back.shape == np.shape(value) and back.tolist() == np.asarray(value).tolist()
    with job.data:
        assert h5py.check_dtype(vlen=job.data["x"].dtype) is str
    job.data["s"] = np.str_("scalar")
    assert job.data["s"] == "scalar"


def test_other_threads_get_copies_while_one_is_in_with(ws: Workspace) -> None:
    job = ws.open_job({"a": 1})
    job.data["x"] = np.arange(10)
    inside, done = threading.Event(), threading.Event()

    def hold() -> None:
        with job.data:
            assert isinstance(job.data["x"], h5py.Dataset)
            inside.set()
            done.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    inside.wait(10)
    try:
        copy = job.data["x"]  # this thread is not in a with block
    finally:
        done.set()
        thread.join()
    assert isinstance(copy, np.ndarray) and copy[:3].tolist() == [0, 1, 2]


def test_threads_writing_in_with_and_reading_plainly(ws: Workspace) -> None:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    job = ws.open_job({"a": 1})
    job.data["x"] = np.arange(10)
    errors: list[BaseException] = []

    def writer(tag: int) -> None:
        try:
            for i in range(150):
                with job.data:
                    job.data[f"k{tag}"] = i
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(150):
                assert job.data["x"].tolist() == list(range(10))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(2)]
    threads.append(threading.Thread(target=reader))
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(previous)
    assert errors == []
    assert job.data["k0"] == 149 and job.data["k1"] == 149
