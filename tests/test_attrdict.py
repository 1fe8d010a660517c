"""KeyAttributes: attribute access mapped to keys, with each class's rules for its own names."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from plams_cli._attrdict import KeyAttributes
from plams_cli.core.settings import Settings
from plams_cli.workspace import Workspace
from plams_cli.workspace.h5store import H5Store, H5StoreManager


class Box(KeyAttributes):
    """A minimal mapping with the default rules: names starting with "_" are attributes."""

    __slots__ = ("_data", "_hidden")

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]


class Named(Box):
    __slots__ = ()
    _own_prefix = "__"
    _own_names: ClassVar[frozenset[str]] = frozenset({"_data"})


def test_default_rules_keys_and_own_attributes() -> None:
    box = Box()
    box.x = 1
    box._hidden = 2
    assert box._data == {"x": 1} and box.x == 1 and box._hidden == 2
    del box.x
    del box._hidden
    assert box._data == {} and not hasattr(box, "x") and not hasattr(box, "_hidden")
    with pytest.raises(AttributeError, match="no key 'x'"):
        del box.x
    assert getattr(box, "missing", "default") == "default"


def test_a_subclass_names_its_own_attributes() -> None:
    named = Named()
    named._key = 1  # a single underscore is a key here ...
    assert named._data == {"_key": 1} and named._key == 1
    with pytest.raises(AttributeError):  # ... a dunder is not
        _ = named.__nothing__
    assert Named._own_rules == ("__", "", frozenset({"_data"}))


def test_settings_rules(tmp_path: Path) -> None:
    s = Settings()
    s.a.b = 1
    assert s == {"a": {"b": 1}} and s.A.B == 1
    s.__note__ = "attribute"  # dunders are attributes, as in PLAMS
    assert "__note__" not in s and s.__note__ == "attribute"
    del s.__note__
    assert not hasattr(s, "__note__")
    with pytest.raises(AttributeError):
        del s.missing
    with s.suppress_missing(), pytest.raises(KeyError):  # a KeyError, as in PLAMS
        _ = s.missing


def test_synced_dict_reads_and_writes_underscore_keys(tmp_path: Path) -> None:
    job = Workspace(tmp_path, create=True).open_job({"_x": 1}).init()
    assert job.sp._x == 1
    job.doc._y = 2
    assert job.doc() == {"_y": 2} and job.doc._y == 2
    del job.doc._y
    assert job.doc() == {}
    with pytest.raises(AttributeError, match="no key 'z'"):
        _ = job.doc.z


def test_h5_rules(tmp_path: Path) -> None:
    store = H5Store(str(tmp_path / "d.h5"))
    store.x = 1
    store.g = {"y": 2}
    assert store.x == 1 and store.g.y == 2
    with pytest.raises(AttributeError, match="no key 'z' in /g"):
        _ = store.g.z
    with pytest.raises(AttributeError, match=r"no key 'z' in .*d\.h5"):
        del store.z
    with pytest.raises(AttributeError):
        _ = store._private
    stores = H5StoreManager(str(tmp_path))
    stores.s = {"a": 1}
    assert stores.s.a == 1 and "s" in stores
    del stores.s
    assert "s" not in stores
    with pytest.raises(AttributeError, match="^s$"):
        del stores.s
