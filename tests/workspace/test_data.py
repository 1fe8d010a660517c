"""HDF5 job data through h5py."""

from __future__ import annotations

import h5py
import numpy as np
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
def test_unstorable_list_is_a_clear_type_error(ws: Workspace, value: list) -> None:
    job = ws.open_job({"a": 1})
    job.data["kept"] = 1
    with pytest.raises(TypeError, match="cannot store the list under 'bad' in HDF5: it must hold only"):
        job.data["bad"] = value
    assert list(job.data) == ["kept"]
