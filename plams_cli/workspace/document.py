"""The job document: a JSON dict in ``signac_job_document.json``, safe to share.

Every change reads the file, applies the change and writes the whole file atomically
(temporary file, fsync, :func:`os.replace`) while holding a file lock, so two processes
that each set a different key both keep their key. A read-modify-write that spans
several statements (``doc.n += 1``) needs :meth:`Document.locked` around it, or
:meth:`Document.modify`, which does it in one call.
"""

from __future__ import annotations

import copy
import json
import os
from _thread import get_ident  # threading's own source of it, always loaded
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from plams_cli._fs import atomic_write
from plams_cli.errors import WorkspaceError

from ._io import FILE_MODE, read_json
from ._synced import SyncedDict

if TYPE_CHECKING:
    from filelock import BaseFileLock

__all__ = ["Document", "DOCUMENT_FILENAME", "PROJECT_DOCUMENT_FILENAME"]

#: The document's file name inside a job folder, as signac names it.
DOCUMENT_FILENAME = "signac_job_document.json"
#: The lock file next to it; hidden, so listings of the job folder stay clean.
LOCK_FILENAME = ".signac_job_document.json.lock"
#: The project document's file name in the project folder, as signac names it.
PROJECT_DOCUMENT_FILENAME = "signac_project_document.json"


class _DocumentRoot:
    """Loads and saves the document file; holds the lock and, while locked, a cache."""

    __slots__ = (
        "folder", "filename", "lockname", "before_write", "_lock", "_depth", "_cache", "_owner"
    )

    def __init__(self, folder: str, before_write: Callable[[], None] | None, name: str) -> None:
        self.folder = folder
        self.filename = folder + os.sep + name
        self.lockname = folder + os.sep + "." + name + ".lock"
        self.before_write = before_write
        self._lock: BaseFileLock | None = None
        # The lock is held by one thread at a time (filelock's locks are per thread), and
        # only that thread may use the cache: another one reads the file as it is.
        self._depth = 0
        self._cache: dict[str, Any] | None = None
        self._owner: int | None = None

    def _held(self) -> bool:
        return self._depth > 0 and self._owner == get_ident()

    def _read(self) -> dict[str, Any]:
        try:
            data = read_json(self.filename)
        except FileNotFoundError:
            if self.before_write is not None and not os.path.isdir(self.folder):
                # The folder itself is gone: let the owner say so (a moved or removed
                # job) rather than show an empty document.
                self.before_write()
            return {}
        if not isinstance(data, dict):
            raise WorkspaceError(f"{self.filename} does not hold a JSON object")
        return data

    def load(self) -> dict[str, Any]:
        # Outside a lock another process may change the file at any time, so read it
        # each time. Inside the lock nobody else writes, so the first read is kept.
        if self._held():
            if self._cache is None:
                self._cache = self._read()
            return self._cache
        return self._read()

    def modify(self, func: Callable[[dict[str, Any]], Any]) -> Any:
        with self.locked():
            data = copy.deepcopy(self.load())
            result = func(data)
            self.save(data)
            return result

    def save(self, data: dict[str, Any]) -> None:
        if self.before_write is not None:
            self.before_write()
        blob = json.dumps(data).encode()
        try:
            atomic_write(self.filename, blob, mode=FILE_MODE)
        except BaseException:
            self._cache = None
            raise
        if self._held():
            self._cache = data

    @contextmanager
    def locked(self, timeout_s: float = -1) -> Iterator[None]:
        # Checked before each outermost lock, not only the first: the file lock creates
        # the folder of its lock file, which must not bring back a removed job folder.
        if not self._held() and self.before_write is not None:
            self.before_write()
        if self._lock is None:
            from filelock import FileLock  # imported late: only writers need it

            self._lock = FileLock(self.lockname, timeout=timeout_s)
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=timeout_s)
        except Timeout as exc:
            raise WorkspaceError(
                f"could not lock {self.filename} within {timeout_s} s; "
                f"another process holds {self.lockname}"
            ) from exc
        self._owner = get_ident()
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if not self._depth:
                self._cache = None
                self._owner = None
            self._lock.release()


class Document(SyncedDict):
    """A job document: a dict persisted as JSON, with attribute access and nesting.

    Reads always see the file as it is now; each change is written atomically under a
    file lock. ``doc()`` returns a plain ``dict`` copy.

    Parameters
    ----------
    folder
        The job folder holding ``signac_job_document.json``.
    before_write
        Called before each write and each outermost lock, and on a read that finds the
        folder gone; it creates the job folder, or raises if the job was removed.
    name
        The file name in ``folder``; the project document is
        ``signac_project_document.json``. The lock file is ``.<name>.lock``.

    Examples
    --------
    >>> with job.doc.locked():          # doctest: +SKIP
    ...     job.doc.count = job.doc.get("count", 0) + 1
    >>> job.doc.modify(lambda d: d.update(count=d.get("count", 0) + 1))  # doctest: +SKIP
    """

    __slots__ = ()

    def __init__(
        self,
        folder: str,
        before_write: Callable[[], None] | None = None,
        name: str = DOCUMENT_FILENAME,
    ) -> None:
        super().__init__(_DocumentRoot(folder, before_write, name), ())

    @property
    def filename(self) -> str:
        """The path of ``signac_job_document.json``."""
        root: _DocumentRoot = self._root
        return root.filename

    def locked(self, timeout_s: float = -1) -> Any:
        """Hold the document's file lock for a block of reads and writes.

        Other processes that change the document (through this class) wait until the
        block ends, so ``doc.n = doc.n + 1`` inside it never loses an update. The lock is
        re-entrant within one process.

        Parameters
        ----------
        timeout_s
            Seconds to wait for the lock; negative waits for ever.

        Returns
        -------
        contextlib.AbstractContextManager
            The context manager holding the lock.

        Raises
        ------
        WorkspaceError
            If the lock is not obtained within ``timeout_s``.
        """
        root: _DocumentRoot = self._root
        return root.locked(timeout_s)

    def modify(self, func: Callable[[dict[str, Any]], Any]) -> Any:
        """Apply ``func`` to the document data under the lock and save the result.

        Parameters
        ----------
        func
            Receives a plain ``dict`` copy of the document and changes it in place.

        Returns
        -------
        Any
            What ``func`` returned.
        """
        return self._root.modify(func)

    def reset(self, data: dict[str, Any]) -> None:
        """Replace the whole document by ``data``.

        Parameters
        ----------
        data
            The new document, a JSON-encodable mapping.
        """
        from ._io import normalize

        new = normalize(dict(data))

        def change(current: dict[str, Any]) -> None:
            current.clear()
            current.update(new)

        self._root.modify(change)
