"""HDF5 files of a job (``signac_data.h5`` and friends) as dict-like stores, via h5py.

The layout is signac's: mappings become groups, scalars and strings scalar datasets,
``None`` an empty dataset, arrays datasets (NumPy unicode arrays as variable-length
strings, like lists of str). Inside ``with store:`` the file stays open and arrays come
back as :class:`h5py.Dataset` objects (by reference, sliced with NumPy syntax, read only
when sliced); outside it the file is opened for each access and arrays come back as NumPy
copies. The open file is per thread. Overwriting a value is all or nothing: the new value
is written under a temporary name first. h5py and NumPy are imported on first use only.
"""

from __future__ import annotations

import os
import threading
import weakref
from _thread import get_ident
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from plams_cli._attrdict import KeyAttributes
from plams_cli.errors import WorkspaceError

from ._h5group import H5Group as H5Group
from ._h5group import H5InvalidKeyError as H5InvalidKeyError
from ._h5group import check_key, set_value
from .errors import H5StoreAlreadyOpenError, H5StoreClosedError

if TYPE_CHECKING:
    import h5py

__all__ = ["H5Store", "H5Group", "H5StoreManager", "H5InvalidKeyError"]



class _EnsureOpen:
    __slots__ = ("store", "mode", "opened")

    def __init__(self, store: H5Store, mode: str) -> None:
        self.store = store
        self.mode = mode
        self.opened = False

    def __enter__(self) -> None:
        if self.store._state.file is None:
            self.store.open(self.mode)
            self.opened = True

    def __exit__(self, *exc: object) -> None:
        if self.opened:
            self.store.close()


class _ThreadState(threading.local):
    """The open file of a store as one thread sees it; the class attributes are defaults."""

    file: h5py.File | None = None
    mode: str | None = None
    depth = 0


class _Gate:
    """Orders the opening of one HDF5 file among the threads of this process.

    HDF5 refuses to open a file for writing while the same process has it open read only
    (the other way round is allowed). Plain reads hold a file read only for one access,
    so a thread about to write waits for them to finish.
    """

    __slots__ = ("cond", "readers", "__weakref__")

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.readers: dict[int, int] = {}  # thread id -> read-only handles it holds


_gates: weakref.WeakValueDictionary[str, _Gate] = weakref.WeakValueDictionary()
_gates_lock = threading.Lock()
#: How long a writer waits for other threads' read-only handles to close.
_WRITER_WAIT_S = 60.0


def _gate(filename: str) -> _Gate:
    with _gates_lock:
        gate = _gates.get(filename)
        if gate is None:
            gate = _gates[filename] = _Gate()
        return gate


class H5Store(KeyAttributes, MutableMapping[str, Any]):
    """An HDF5 file used as a dict of arrays, scalars, strings and nested groups.

    Keys may be paths (``store["group/sub/x"]``); values may also be reached as
    attributes (``store.x``). ``with store:`` keeps the file open, and inside it arrays
    are returned as :class:`h5py.Dataset` objects that read only what is sliced.

    The open file belongs to the thread that opened it: while one thread is inside
    ``with store:``, another thread's ``store["x"]`` still opens the file for itself and
    returns a NumPy copy, as outside the block.

    Parameters
    ----------
    filename
        The HDF5 file; created on the first write.
    before_write
        Called before the file is opened for writing, e.g. to check that the job folder
        holding it still exists; it may raise.
    **kwargs
        Passed to :class:`h5py.File` when the file is opened, as signac's ``H5Store``
        does; ``mode`` is the mode :meth:`open` and ``with store:`` use (default ``"a"``).

    Raises
    ------
    ValueError
        If ``filename`` is not a non-empty string.
    """

    __slots__ = ("_filename", "_state", "_gate", "_before_write", "_kwargs")

    def __init__(
        self, filename: str, before_write: Callable[[], None] | None = None, **kwargs: Any
    ) -> None:
        if not (isinstance(filename, str) and filename):
            raise ValueError("an H5Store needs a file name (a non-empty string)")
        self._filename = os.path.abspath(filename)
        self._state = _ThreadState()
        self._gate = _gate(self._filename)
        self._before_write = before_write
        self._kwargs = kwargs

    def _missing_attribute(self, name: str) -> AttributeError:
        return AttributeError(f"no key {name!r} in {self._filename}")

    @property
    def filename(self) -> str:
        """The absolute path of the HDF5 file."""
        return self._filename

    @property
    def file(self) -> h5py.File:
        """The :class:`h5py.File` this thread has open.

        Raises
        ------
        H5StoreClosedError
            A ``WorkspaceError`` and ``RuntimeError``: the store is not open in this
            thread (use ``with store:``).
        """
        file = self._state.file
        if file is None:
            raise H5StoreClosedError(f"{self._filename} is not open; use 'with store:' first")
        return file

    @property
    def mode(self) -> str:
        """The mode the file is open in (``"r"`` or ``"r+"``), as h5py reports it.

        Raises
        ------
        H5StoreClosedError
            If the store is not open in this thread.
        """
        return str(self.file.mode)

    def open(self, mode: str | None = None) -> H5Store:
        """Open the file for this thread (``"a"`` creates it, ``"r"`` reads only).

        Parameters
        ----------
        mode
            The h5py file mode; by default the ``mode`` given to the constructor, or ``"a"``.

        Returns
        -------
        H5Store
            This store.

        Raises
        ------
        H5StoreAlreadyOpenError
            A ``WorkspaceError``: the store is already open in this thread.
        WorkspaceError
            If the file is not an HDF5 file, or another thread keeps it open read only
            for longer than a minute.
        JobRemovedError
            If the job folder holding the file was moved or removed (job stores only).
        """
        if mode is None:
            mode = str(self._kwargs.get("mode") or "a")
        state = self._state
        if state.file is not None:
            raise H5StoreAlreadyOpenError(f"{self._filename} is already open")
        if mode != "r" and self._before_write is not None:
            self._before_write()
        gate, me = self._gate, get_ident()
        with gate.cond:
            if mode != "r":
                if gate.readers.get(me):
                    raise WorkspaceError(
                        f"cannot open {self._filename} for writing: this thread has it open "
                        "read only"
                    )
                if not gate.cond.wait_for(lambda: not gate.readers, _WRITER_WAIT_S):
                    raise WorkspaceError(
                        f"cannot open {self._filename} for writing: another thread of this "
                        f"process kept it open read only for {_WRITER_WAIT_S:.0f} s"
                    )
            state.file = self._open_file(mode)
            state.mode = mode
            if mode == "r":
                gate.readers[me] = gate.readers.get(me, 0) + 1
        return self

    def _open_file(self, mode: str) -> h5py.File:
        import h5py

        try:
            return h5py.File(self._filename, **{**self._kwargs, "mode": mode})
        except FileNotFoundError:
            if mode != "r" and self._before_write is not None:
                self._before_write()  # the folder vanished just now: say so
            raise
        except OSError as exc:
            if not os.path.exists(self._filename):
                if mode != "r" and self._before_write is not None:
                    self._before_write()
                raise FileNotFoundError(self._filename) from exc
            raise WorkspaceError(f"cannot open {self._filename} as HDF5: {exc}") from exc

    def close(self) -> None:
        """Close the file if this thread has it open."""
        state = self._state
        file = state.file
        if file is None:
            return
        gate = self._gate
        with gate.cond:
            try:
                file.close()
            finally:
                if state.mode == "r":
                    me = get_ident()
                    left = gate.readers.get(me, 1) - 1
                    if left:
                        gate.readers[me] = left
                    else:
                        gate.readers.pop(me, None)
                    gate.cond.notify_all()
                state.file = state.mode = None

    def flush(self) -> None:
        """Write buffered data to disk."""
        self.file.flush()

    def __enter__(self) -> H5Store:
        """Open the file (unless already open) for the block; nested blocks are allowed."""
        state = self._state
        if state.file is None:
            self.open()
        state.depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the file when the outermost block of this thread ends."""
        state = self._state
        state.depth -= 1
        if state.depth == 0:
            self.close()

    def _ensure_open(self, mode: str = "a") -> _EnsureOpen:
        return _EnsureOpen(self, mode)

    @staticmethod
    def _abs(key: str) -> str:
        if not isinstance(key, str) or not key.strip("/"):
            raise KeyError(f"HDF5 keys must be non-empty strings, not {key!r}")
        return key if key.startswith("/") else "/" + key

    def __getitem__(self, key: str) -> Any:
        """Return the value at ``key``: a Python scalar or str, ``None``, an array or a group.

        Raises
        ------
        KeyError
            If ``key`` does not exist (or the file does not).
        """
        import h5py

        path = self._abs(key)
        try:
            guard = self._ensure_open("r")
            guard.__enter__()
        except FileNotFoundError:
            raise KeyError(key) from None
        try:
            try:
                item = self.file[path]
            except KeyError:
                raise KeyError(key) from None
            if isinstance(item, h5py.Group):
                return H5Group(self, item.name)
            if item.shape is None:
                return None
            if item.shape == ():
                if h5py.check_dtype(vlen=item.dtype) is str:
                    return item.asstr()[()]
                value = item[()]
                return value.item() if hasattr(value, "item") and not isinstance(value, bytes) else value
            if not guard.opened:
                return item
            if h5py.check_dtype(vlen=item.dtype) is str:
                return item.asstr()[()]  # str, not the bytes h5py reads by default
            return item[()]
        finally:
            guard.__exit__()

    def __setitem__(self, key: str, value: Any) -> None:
        """Store ``value`` at ``key``, creating intermediate groups.

        Raises
        ------
        TypeError
            If the value cannot be stored in HDF5.
        H5InvalidKeyError
            A ``ValueError`` (and a ``KeyError``): a key part contains a dot.
        ValueError
            If the store is open read only.
        """
        path = self._abs(key)
        *parents, name = path.strip("/").split("/")
        for part in (*parents, name):
            check_key(part)
        with self._ensure_open("a"):
            self._check_writable()
            group = self.file.require_group("/" + "/".join(parents)) if parents else self.file
            set_value(group, name, value)

    def _check_writable(self) -> None:
        if self._state.mode == "r":
            # The ValueError h5py (so signac) raises, with a message saying why.
            raise ValueError(f"cannot write to {self._filename}: it is open read only")

    def __delitem__(self, key: str) -> None:
        """Delete ``key``; :class:`KeyError` if it is absent."""
        path = self._abs(key)
        if path not in self:
            raise KeyError(key)
        with self._ensure_open("a"):
            self._check_writable()
            del self.file[path]

    def __contains__(self, key: object) -> bool:
        """Return whether ``key`` exists (a missing file holds nothing)."""
        if not isinstance(key, str) or not key.strip("/"):
            return False
        if self._state.file is None and not os.path.exists(self._filename):
            return False
        with self._ensure_open("r"):
            return self._abs(key) in self.file

    def __iter__(self) -> Iterator[str]:
        """Iterate over the top-level names."""
        if self._state.file is None and not os.path.exists(self._filename):
            return iter(())
        with self._ensure_open("r"):
            return iter(list(self.file.keys()))

    def __len__(self) -> int:
        """Return the number of top-level names."""
        return sum(1 for _ in self)

    def setdefault(self, key: str, default: Any = None) -> Any:
        """Store ``default`` under ``key`` unless it exists; return the value stored there."""
        if key not in self:
            self[key] = default
        return self[key]

    def clear(self) -> None:
        """Remove all data from the file."""
        if self._state.file is None and not os.path.exists(self._filename):
            return
        with self._ensure_open("a"):
            self.file.clear()

    def __repr__(self) -> str:
        """Show the file name."""
        return f"H5Store({self._filename!r})"

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


class H5StoreManager(KeyAttributes, Mapping[str, H5Store]):
    """The HDF5 stores of a job folder: ``stores["name"]`` is the file ``name.h5``.

    Parameters
    ----------
    folder
        The job folder.
    before_write
        Handed to each store (see :class:`H5Store`).
    """

    __slots__ = ("_folder", "_stores", "_before_write")

    suffix = ".h5"
    # stores.x is stores["x"]: a name that cannot be a store raises KeyError, as before
    _missing_raises_key_error = True

    def __init__(self, folder: str, before_write: Callable[[], None] | None = None) -> None:
        self._folder = folder
        self._stores: dict[str, H5Store] = {}
        self._before_write = before_write

    def _missing_attribute(self, name: str) -> AttributeError:
        return AttributeError(name)

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> H5Store: ...

    @property
    def prefix(self) -> str:
        """The folder holding the ``.h5`` files."""
        return self._folder

    @staticmethod
    def _check_name(name: object) -> str:
        if not isinstance(name, str) or not name or os.sep in name:
            raise KeyError(f"store names must be plain names without dots: {name!r}")
        if "." in name:
            raise H5InvalidKeyError(f"store names must be plain names without dots: {name!r}")
        return name

    def __getitem__(self, name: str) -> H5Store:
        """Return the store for ``name.h5`` (created on its first write)."""
        store = self._stores.get(name)
        if store is None:
            store = self._stores[self._check_name(name)] = H5Store(
                self._folder + os.sep + name + self.suffix, before_write=self._before_write
            )
        return store

    def __setitem__(self, name: str, value: Mapping[str, Any]) -> None:
        """Replace the whole file ``name.h5`` by one holding ``value`` (``stores["s"] = {...}``).

        The new file is written under a temporary name and moved over the old one, so a
        failure leaves the old file as it was.

        Raises
        ------
        ValueError
            If ``value`` is empty (as in signac: there would be no file to move).
        """
        from plams_cli._fs import unique_tag

        target = self._folder + os.sep + self._check_name(name) + self.suffix
        if not len(value):
            raise ValueError(f"cannot assign an empty value to the store {name!r}")
        tmp = H5Store(f"{target}.{unique_tag()}.tmp", before_write=self._before_write)
        try:
            with tmp:
                for key, item in value.items():
                    tmp[key] = item
        except BaseException:
            tmp.close()
            try:
                os.unlink(tmp.filename)
            except FileNotFoundError:
                pass
            raise
        old = self._stores.pop(name, None)
        if old is not None:
            old.close()
        os.replace(tmp.filename, target)

    def __delitem__(self, name: str) -> None:
        """Delete the file ``name.h5``; :class:`KeyError` if it does not exist."""
        store = self._stores.pop(self._check_name(name), None)
        if store is not None:
            store.close()
        try:
            os.unlink(self._folder + os.sep + name + self.suffix)
        except FileNotFoundError:
            raise KeyError(name) from None

    def __contains__(self, name: object) -> bool:
        """Return whether ``name.h5`` exists."""
        return isinstance(name, str) and os.path.isfile(self._folder + os.sep + name + self.suffix)

    def __iter__(self) -> Iterator[str]:
        """Iterate over the names of existing ``.h5`` files."""
        try:
            names = sorted(os.listdir(self._folder))
        except FileNotFoundError:
            return iter(())
        return iter([n[: -len(self.suffix)] for n in names if n.endswith(self.suffix)])

    def __len__(self) -> int:
        """Return the number of ``.h5`` files."""
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        """Show the folder."""
        return f"H5StoreManager({self._folder!r})"
