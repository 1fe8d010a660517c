"""Nested dict and list views that write every change back to their owner.

A view holds its owner (a *root*) and the path of keys from the root's data to the value
it shows. Reads go through :meth:`SyncedRoot.load`; writes go through
:meth:`SyncedRoot.modify`, which applies a function to the data and persists the result in
one step. State points and job documents are roots; nothing outside
:mod:`plams_cli.workspace` imports this module.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, MutableMapping, MutableSequence
from typing import Any, Protocol, overload

from plams_cli._attrdict import KeyAttributes

from ._io import normalize

__all__ = ["SyncedRoot", "SyncedDict", "SyncedList", "wrap"]

Path = tuple[Any, ...]


class SyncedRoot(Protocol):
    """The owner of the data behind :class:`SyncedDict` and :class:`SyncedList` views."""

    def load(self) -> dict[str, Any]:
        """Return the current data (the caller must not change it)."""
        ...

    def modify(self, func: Callable[[dict[str, Any]], Any]) -> Any:
        """Apply ``func`` to a copy of the data, persist the result and return ``func``'s value."""
        ...


def _walk(data: Any, path: Path) -> Any:
    for key in path:
        data = data[key]
    return data


def wrap(root: SyncedRoot, path: Path, value: Any) -> Any:
    """Return ``value`` as a view when it is a dict or a list, else as it is.

    Parameters
    ----------
    root
        The owner of the data.
    path
        Keys leading from the root's data to ``value``.
    value
        The value found at ``path``.

    Returns
    -------
    Any
        A :class:`SyncedDict`, a :class:`SyncedList`, or ``value`` itself.
    """
    if type(value) is dict:
        return SyncedDict(root, path)
    if type(value) is list:
        return SyncedList(root, path)
    return value


class SyncedDict(KeyAttributes, MutableMapping[str, Any]):
    """A dict-like view of a nested mapping; changes are saved at once.

    Keys are reachable as items (``sp["a"]``) and attributes (``sp.a``, also ``sp._a``, as
    in signac) unless the name is a method of this class (``sp.keys`` is the method; use
    ``sp["keys"]``) or starts with ``__``. Calling the view (``sp()``) returns a plain,
    independent ``dict`` copy.

    Parameters
    ----------
    root
        The owner that loads and saves the data.
    path
        Keys leading from the root's data to this mapping; ``()`` for the root itself.
    """

    __slots__ = ("_root", "_path")
    _own_prefix = "__"
    _own_names = frozenset(__slots__)

    def __init__(self, root: SyncedRoot, path: Path = ()) -> None:
        object.__setattr__(self, "_root", root)
        object.__setattr__(self, "_path", path)

    def _data(self) -> dict[str, Any]:
        data = _walk(self._root.load(), self._path)
        if type(data) is not dict:
            raise KeyError(f"{'.'.join(map(str, self._path))} is no longer a mapping")
        return data

    def _target(self, data: dict[str, Any]) -> dict[str, Any]:
        target = _walk(data, self._path)
        if type(target) is not dict:
            raise KeyError(f"{'.'.join(map(str, self._path))} is no longer a mapping")
        return target

    def __call__(self) -> dict[str, Any]:
        """Return a plain ``dict`` copy of the data; changing it changes nothing on disk."""
        return copy.deepcopy(self._data())

    def __getitem__(self, key: str) -> Any:
        """Return the value of ``key``; nested dicts and lists come back as views."""
        return wrap(self._root, (*self._path, key), self._data()[key])

    def __setitem__(self, key: str, value: Any) -> None:
        """Set ``key`` to a JSON-encodable ``value`` and save."""
        value = normalize({key: value})[key]

        def change(data: dict[str, Any]) -> None:
            self._target(data)[key] = value

        self._root.modify(change)

    def __delitem__(self, key: str) -> None:
        """Remove ``key`` and save; :class:`KeyError` if it is absent."""

        def change(data: dict[str, Any]) -> None:
            del self._target(data)[key]

        self._root.modify(change)

    def __iter__(self) -> Iterator[str]:
        """Iterate over a snapshot of the keys."""
        return iter(list(self._data()))

    def __len__(self) -> int:
        """Return the number of keys."""
        return len(self._data())

    def __contains__(self, key: object) -> bool:
        """Return whether ``key`` is present."""
        return key in self._data()

    def __eq__(self, other: object) -> bool:
        """Compare the data with another mapping."""
        if isinstance(other, SyncedDict):
            other = other()
        if isinstance(other, Mapping):
            return self._data() == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        """Show the data as a dict."""
        return repr(self._data())

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value of ``key``, or ``default`` when it is absent."""
        data = self._data()
        if key in data:
            return wrap(self._root, (*self._path, key), data[key])
        return default

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Update several keys and save once."""
        values = normalize(dict(other, **kwargs))

        def change(data: dict[str, Any]) -> None:
            self._target(data).update(values)

        self._root.modify(change)

    def setdefault(self, key: str, default: Any = None) -> Any:
        """Return the value of ``key``, setting it to ``default`` first when absent."""
        value = normalize({key: default})[key]

        def change(data: dict[str, Any]) -> None:
            self._target(data).setdefault(key, value)

        if key not in self._data():
            self._root.modify(change)
        return self[key]

    def clear(self) -> None:
        """Remove every key and save once."""
        self._root.modify(lambda data: self._target(data).clear())


class SyncedList(MutableSequence[Any]):
    """A list-like view of a nested list; changes are saved at once.

    Calling the view returns a plain ``list`` copy.

    Parameters
    ----------
    root
        The owner that loads and saves the data.
    path
        Keys and indices leading from the root's data to this list.
    """

    __slots__ = ("_root", "_path")

    def __init__(self, root: SyncedRoot, path: Path) -> None:
        self._root = root
        self._path = path

    def _data(self) -> list[Any]:
        data = _walk(self._root.load(), self._path)
        if type(data) is not list:
            raise KeyError(f"{'.'.join(map(str, self._path))} is no longer a list")
        return data

    def _target(self, data: dict[str, Any]) -> list[Any]:
        target = _walk(data, self._path)
        if type(target) is not list:
            raise KeyError(f"{'.'.join(map(str, self._path))} is no longer a list")
        return target

    def __call__(self) -> list[Any]:
        """Return a plain ``list`` copy of the data."""
        return copy.deepcopy(self._data())

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        """Return an item (a view for dicts and lists) or, for a slice, a plain list."""
        data = self._data()
        if isinstance(index, slice):
            return copy.deepcopy(data[index])
        value = data[index]
        return wrap(self._root, (*self._path, index % len(data)), value)

    def __setitem__(self, index: Any, value: Any) -> None:
        """Set an item (or a slice) and save."""
        value = normalize([value])[0]

        def change(data: dict[str, Any]) -> None:
            self._target(data)[index] = value

        self._root.modify(change)

    def __delitem__(self, index: Any) -> None:
        """Remove an item (or a slice) and save."""

        def change(data: dict[str, Any]) -> None:
            del self._target(data)[index]

        self._root.modify(change)

    def __len__(self) -> int:
        """Return the number of items."""
        return len(self._data())

    def insert(self, index: int, value: Any) -> None:
        """Insert ``value`` before ``index`` and save."""
        value = normalize([value])[0]
        self._root.modify(lambda data: self._target(data).insert(index, value))

    def extend(self, values: Any) -> None:
        """Append several values and save once."""
        items = normalize(list(values))
        self._root.modify(lambda data: self._target(data).extend(items))

    def __eq__(self, other: object) -> bool:
        """Compare the data with another list."""
        if isinstance(other, SyncedList):
            other = other()
        if isinstance(other, (list, tuple)):
            return self._data() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        """Show the data as a list."""
        return repr(self._data())
