"""HDF5 stores (``job.data``, ``job.stores``, ``H5Store``) behave as signac's: side by side."""

from __future__ import annotations

import os
from array import array
from pathlib import Path
from types import SimpleNamespace as Api
from typing import Any

import numpy as np
import pytest

from ._side_by_side import same_outcome

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _job(api: Api, root: str) -> Any:
    return api.init_project(root).open_job({"a": 1}).init()


def group_equals_the_dict_stored(api: Api, root: str) -> Any:
    job = _job(api, root)
    job.data["g"] = {"a": 1, "inner": {"b": "x"}}
    made = job.data.setdefault("h", {"c": 2})
    kept = job.data.setdefault("g", {"other": 0})
    return (
        job.data["g"] == {"a": 1, "inner": {"b": "x"}},
        job.data["g"] == {"a": 2},
        job.data["g"]["inner"] == {"b": "x"},
        isinstance(made, api.H5Group) and made["c"] == 2,
        isinstance(kept, api.H5Group) and sorted(kept) == ["a", "inner"],
        job.data.setdefault("s", 3),
    )


def attribute_assignment_and_deletion(api: Api, root: str) -> Any:
    job = _job(api, root)
    job.data.x = 1
    seen = [job.data.x, "x" in job.data]
    del job.data.x
    seen.append("x" in job.data)
    job.data["g"] = {"k": 1}
    job.data.g.m = 2
    seen.append(sorted(job.data["g"]))
    job.stores.test.foo = True
    seen += [job.stores.test.foo, sorted(job.stores)]
    return seen


def missing_attribute(api: Api, root: str) -> Any:
    job = _job(api, root)
    job.data.x = 1
    return job.data.nope


def array_array_is_stored(api: Api, root: str) -> Any:
    job = _job(api, root)
    job.data["d"] = array("d", [1.0, 2.5])
    job.data["i"] = array("i", [3, 4])
    with job.data:
        return job.data["d"][()].tolist(), job.data["i"][()].tolist()


def dotted_key(api: Api, root: str) -> Any:
    job = _job(api, root)
    job.data["a.b"] = 1


def dotted_store_name(api: Api, root: str) -> Any:
    job = _job(api, root)
    job.stores["a.b"] = {"x": 1}


@pytest.mark.parametrize("name", [None, ""], ids=["none", "empty"])
def test_store_needs_a_file_name(name: Any, tmp_path: Path) -> None:
    same_outcome(lambda api, root: api.H5Store(name), tmp_path)


def constructor_mode(api: Api, root: str) -> Any:
    filename = os.path.join(root, "f.h5")
    with api.H5Store(filename) as store:
        store["x"] = 1
    reader = api.H5Store(filename, mode="r")
    with reader:
        return reader.mode, reader["x"], reader.file.mode


def read_only_store_refuses_writes(api: Api, root: str) -> Any:
    filename = os.path.join(root, "f.h5")
    api.H5Store(filename)["x"] = 1
    with api.H5Store(filename, mode="r") as reader:
        try:
            reader["y"] = 2
        except (OSError, ValueError, KeyError):
            refused = True
    return refused, sorted(api.H5Store(filename))


def open_twice(api: Api, root: str) -> Any:
    store = api.H5Store(os.path.join(root, "f.h5"))
    store.open()
    try:
        store.open("r")
    finally:
        store.close()


def closed_store_file(api: Api, root: str) -> Any:
    return api.H5Store(os.path.join(root, "f.h5")).file


def assign_whole_dicts(api: Api, root: str) -> Any:
    job = _job(api, root)
    job.data["old"] = 1
    job.data = {"z": 1, "g": {"h": "x"}}
    job.stores["s"] = {"q": 2}
    job.stores["s"] = {"r": 3}
    seen = [sorted(job.data), job.data["g"]["h"], dict(job.stores["s"]) == {"r": 3}]
    job.stores.t = {"u": 4}
    seen.append(sorted(job.stores))
    del job.stores["s"]
    del job.stores.t
    seen += ["s" in job.stores, sorted(job.stores), sorted(os.listdir(job.path))]
    return seen


def assign_an_empty_dict(api: Api, root: str) -> Any:
    job = _job(api, root)
    job.stores["s"] = {}


def delete_a_missing_store(api: Api, root: str) -> Any:
    job = _job(api, root)
    del job.stores["nope"]


def project_stores_too(api: Api, root: str) -> Any:
    project = api.init_project(root)
    project.data = {"a": 1}
    project.stores.extra = {"b": 2}
    del project.stores["extra"]
    return dict(project.data) == {"a": 1}, sorted(project.stores)


def numpy_values_in_hdf5_do_not_warn(api: Api, root: str) -> Any:
    import warnings

    job = _job(api, root)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # HDF5 stores NumPy values natively: no warning
        job.data["x"] = np.float64(1.5)
        job.data["arr"] = np.arange(4)
    return job.data["x"]


CASES = [
    group_equals_the_dict_stored,
    attribute_assignment_and_deletion,
    missing_attribute,
    array_array_is_stored,
    dotted_key,
    dotted_store_name,
    constructor_mode,
    read_only_store_refuses_writes,
    open_twice,
    closed_store_file,
    assign_whole_dicts,
    assign_an_empty_dict,
    delete_a_missing_store,
    project_stores_too,
    numpy_values_in_hdf5_do_not_warn,
]


#: A dotted HDF5 key is also a KeyError here, as it was in earlier plams-cli.
ALSO = {dotted_key: frozenset({"KeyError", "LookupError"}), dotted_store_name: frozenset({"KeyError", "LookupError"})}


@pytest.mark.parametrize("snippet", CASES, ids=[c.__name__ for c in CASES])
def test_same_outcome_as_signac(snippet: Any, tmp_path: Path) -> None:
    same_outcome(snippet, tmp_path, ALSO.get(snippet, frozenset()))


def test_dotted_keys_stay_key_errors_too(tmp_path: Path) -> None:
    # Kept from earlier plams-cli: also a KeyError, besides signac's InvalidKeyError; and
    # refused in nested mappings too (signac checks only the key assigned to).
    from plams_cli.workspace import InvalidKeyError, Workspace

    job = Workspace(tmp_path, create=True).open_job({"a": 1})
    with pytest.raises(KeyError) as info:
        job.data["a.b"] = 1
    assert isinstance(info.value, InvalidKeyError) and "dots" in str(info.value)
    with pytest.raises(InvalidKeyError):
        job.data["g"] = {"x.y": 1}
    assert list(job.data) == []


def test_nested_with_blocks_keep_the_file_open(tmp_path: Path) -> None:
    # A deliberate difference: signac closes the file at the end of the inner block.
    from plams_cli.workspace import H5Store

    store = H5Store(str(tmp_path / "f.h5"))
    with store:
        with store:
            store["x"] = np.arange(3)
        assert store["x"][1:].tolist() == [1, 2]  # still open: a dataset, sliced
    assert store["x"].tolist() == [0, 1, 2]  # closed: a NumPy copy
