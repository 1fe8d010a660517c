"""The value writers of :class:`~plams_cli.workspace.h5store.H5Store` and ``H5Group``.

How Python values become HDF5 objects (signac's layout) and how a value is replaced all
or nothing; the nested-dict view of a group. Nothing outside
:mod:`plams_cli.workspace` imports this module; the public names are re-exported by
:mod:`plams_cli.workspace.h5store`.
"""

from __future__ import annotations

from array import array as _PyArray
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from plams_cli._attrdict import KeyAttributes

from .errors import InvalidKeyError

if TYPE_CHECKING:
    import h5py

    from .h5store import H5Store

__all__ = ["H5Group", "H5InvalidKeyError", "set_value", "check_key"]


class H5InvalidKeyError(InvalidKeyError, KeyError):
    """An HDF5 key or store name contains a dot.

    An :class:`InvalidKeyError` (a ``ValueError``, as signac raises) and a ``KeyError``,
    what this package raised before.
    """


#: Prefix of the temporary name a new value is written under before it replaces the old one.
_TMP_PREFIX = ".plams-tmp-"


def set_value(group: h5py.Group, key: str, value: Any) -> None:
    """Store ``value`` as ``group[key]``; on failure the old value (if any) is left intact.

    A new value replacing an old one is written completely under a temporary name, and
    only then does it take the old one's place (``del`` plus :meth:`h5py.Group.move`,
    which renames a link and copies nothing). So a value that cannot be stored, a
    nested key that is invalid, or an interruption halfway through a group neither
    deletes the old value nor leaves half a group behind.
    """
    import h5py

    from plams_cli._fs import unique_tag

    if key not in group:
        _write(group, key, value, key)
        return
    existing = group[key]
    if isinstance(value, H5Group) and existing == value._group():
        return  # ``store[k] = store[k]``: nothing to do
    if isinstance(value, h5py.Dataset) and existing == value:
        return
    tmp = f"{_TMP_PREFIX}{unique_tag()}"
    _write(group, tmp, value, key)
    del group[key]
    group.move(tmp, key)


def _write(group: h5py.Group, key: str, value: Any, shown: str) -> None:
    """Create ``group[key]`` from ``value``, removing whatever was made if that fails."""
    try:
        _create(group, key, value, shown)
    except BaseException:
        if key in group:
            del group[key]
        raise


def _create(group: h5py.Group, key: str, value: Any, shown: str) -> None:
    """Create ``group[key]``; ``shown`` is the key as errors name it (not a temporary name)."""
    import h5py
    import numpy

    if isinstance(value, (Mapping, H5Group)):
        items = [(check_key(name), item) for name, item in list(value.items())]
        sub = group.create_group(key)
        for name, item in items:
            _create(sub, name, item, f"{shown}/{name}")
    elif value is None:
        group.create_dataset(key, data=None, shape=None, dtype="f")
    elif isinstance(value, bytes):
        group[key] = numpy.bytes_(value)
    elif isinstance(value, str):
        group[key] = str(value)  # numpy.str_ too, which h5py cannot store as it is
    elif isinstance(value, numpy.ndarray) and value.dtype.kind == "U":
        _create_strings(group, key, value)
    elif isinstance(value, (bool, int, float, numpy.generic, numpy.ndarray, h5py.Dataset, _PyArray)):
        try:
            group[key] = value
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"cannot store the {type(value).__name__} under {shown!r} in HDF5: {exc}"
            ) from exc
    elif isinstance(value, (list, tuple)):
        # Handed to h5py as it is, as signac does: h5py stores a list of str as a
        # variable-length string array, where NumPy would make a fixed-width unicode
        # array HDF5 cannot hold.
        try:
            group[key] = value
        except (TypeError, ValueError) as exc:
            array = None
            if _all_str(value):  # e.g. numpy.str_ items, which h5py does not take for str
                try:
                    array = numpy.asarray(value)
                except (TypeError, ValueError):
                    pass
            if array is None or array.dtype.kind != "U":
                raise TypeError(
                    f"cannot store the list under {shown!r} in HDF5: it must hold only numbers, "
                    "only strings, or lists of equal length of those"
                ) from exc
            _create_strings(group, key, array)  # e.g. a list of numpy.str_
    else:
        raise TypeError(f"cannot store a {type(value).__name__} in HDF5 (key {shown!r})")


def _all_str(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_all_str(item) for item in value)
    return isinstance(value, str)


def _create_strings(group: h5py.Group, key: str, array: Any) -> None:
    """Store a NumPy unicode array as variable-length UTF-8 strings, as a list of str is.

    HDF5 has no fixed-width UTF-32 type (NumPy's ``<U``); read back, the value is an
    array of ``str`` objects of the same shape.
    """
    import h5py

    group.create_dataset(key, data=array.astype(object), dtype=h5py.string_dtype())


def check_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise KeyError(f"HDF5 keys must be non-empty strings, not {key!r}")
    if "." in key:
        raise H5InvalidKeyError(f"HDF5 keys may not contain dots: {key!r}")
    return key


class H5Group(KeyAttributes, MutableMapping[str, Any]):
    """A group inside an :class:`H5Store`, used like a nested dict.

    Parameters
    ----------
    store
        The store holding the group.
    path
        The group's absolute path in the file, e.g. ``"/group/sub"``.
    """

    __slots__ = ("_store", "_path")

    def __init__(self, store: H5Store, path: str) -> None:
        self._store = store
        self._path = path

    def _missing_attribute(self, name: str) -> AttributeError:
        return AttributeError(f"no key {name!r} in {self._path}")

    def _group(self) -> h5py.Group:
        return self._store.file[self._path]

    @property
    def path(self) -> str:
        """The group's absolute path in the file."""
        return self._path

    def _full(self, key: str) -> str:
        return key if key.startswith("/") else f"{self._path.rstrip('/')}/{key}"

    def __getitem__(self, key: str) -> Any:
        """Return the value at ``key`` (a relative path such as ``"sub/array"``)."""
        return self._store[self._full(key)]

    def __setitem__(self, key: str, value: Any) -> None:
        """Store ``value`` at ``key``."""
        self._store[self._full(key)] = value

    def __delitem__(self, key: str) -> None:
        """Delete ``key``."""
        del self._store[self._full(key)]

    def __iter__(self) -> Iterator[str]:
        """Iterate over the names directly inside the group."""
        with self._store._ensure_open("r"):
            return iter(list(self._group().keys()))

    def __len__(self) -> int:
        """Return the number of names directly inside the group."""
        with self._store._ensure_open("r"):
            return len(self._group())

    def __contains__(self, key: object) -> bool:
        """Return whether ``key`` (a relative path) exists."""
        return isinstance(key, str) and self._full(key) in self._store

    def setdefault(self, key: str, default: Any = None) -> Any:
        """Store ``default`` under ``key`` unless it exists; return the value stored there."""
        if key not in self:
            self[key] = default
        return self[key]

    def __eq__(self, other: object) -> bool:
        """Compare the content with a mapping (``data["g"] == {"a": 1}``), as signac does.

        A group is always equal to itself, without reading it.
        """
        if isinstance(other, H5Group):
            if self._store.filename == other._store.filename and self._path == other._path:
                return True
        if isinstance(other, Mapping):
            with self._store._ensure_open("r"):
                return dict(self.items()) == dict(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        """Show the file and the group path."""
        return f"H5Group({self._store.filename!r}, {self._path!r})"
