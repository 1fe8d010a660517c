"""A workspace job: a folder ``workspace/<id>`` named by the hash of its state point.

A :class:`Job` object is cheap: it holds its workspace, its id and its state point (as
sorted JSON text or a dict, whichever it was made from) and touches the disk only when
asked. :meth:`Job.init` creates the folder; reading :attr:`Job.doc`, :attr:`Job.data` or
entering ``with job:`` does so too.
"""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from plams_cli._fs import atomic_write
from plams_cli.errors import DestinationExistsError, JobsCorruptedError

from ._io import FILE_MODE, calc_id, check_keys, encode
from .document import DOCUMENT_FILENAME, LOCK_FILENAME, Document
from .errors import JobNotFoundError, JobRemovedError, StatepointKeyError
from .statepoint import STATEPOINT_FILENAME, StatePoint

if TYPE_CHECKING:
    from .h5store import H5Store, H5StoreManager
    from .project import Workspace

__all__ = ["Job", "DATA_KEY"]

#: ``job.data`` is ``job.stores[DATA_KEY]``, the file ``signac_data.h5``.
DATA_KEY = "signac_data"

_SEP = os.sep


class Job:
    """One job of a :class:`~plams_cli.workspace.Workspace`, addressed by its state point.

    Get jobs from :meth:`Workspace.open_job`, by iterating a workspace or from
    :meth:`Workspace.find_jobs`; do not build them directly.

    ``repr(job)`` is ``Job(project=Workspace('/root'), statepoint={...})``, which
    ``eval`` turns back into the job, as with signac.

    Parameters
    ----------
    workspace
        The workspace the job belongs to.
    job_id
        The job id; computed from ``blob`` (or ``statepoint``) when not given.
    blob
        The state point as sorted JSON text (``json.dumps(sp, sort_keys=True)``).
    statepoint
        The state point as a plain dict (used as it is, not copied, when ``job_id`` is
        given; otherwise checked and normalised as :meth:`Workspace.open_job` does).
    existing
        The job folder was listed just now (the job comes from a search or an id), so
        finding it gone later means another process moved or removed it.
    project
        Another name for ``workspace``, as signac calls it.
    """

    __slots__ = (
        "_ws", "_id", "_blob", "_sp", "_known", "_existed", "_doc", "_stores", "_cwd", "_twins",
        "__weakref__",
    )  # fmt: skip

    #: The state point's file name in the job folder, as signac's ``Job.FN_STATE_POINT``.
    FN_STATE_POINT = STATEPOINT_FILENAME
    #: The document's file name in the job folder, as signac's ``Job.FN_DOCUMENT``.
    FN_DOCUMENT = DOCUMENT_FILENAME
    #: The key of ``job.data`` in ``job.stores``, as signac's ``Job.KEY_DATA``.
    KEY_DATA = "signac_data"

    def __init__(
        self,
        workspace: Workspace | None = None,
        job_id: str | None = None,
        *,
        blob: str | None = None,
        statepoint: Mapping[str, Any] | None = None,
        existing: bool = False,
        project: Workspace | None = None,
    ) -> None:
        if workspace is None:
            if project is None:
                raise TypeError("a job needs its workspace (or project)")
            workspace = project
        self._ws = workspace
        if job_id is None and blob is None and statepoint is not None:
            check_keys(statepoint)
            blob = encode(dict(statepoint))
            statepoint = json.loads(blob)
        if job_id is None:
            if blob is None:
                raise ValueError("a job needs an id or a state point")
            import hashlib

            job_id = hashlib.md5(blob.encode()).hexdigest()
        self._id = job_id
        self._blob = blob
        self._sp: dict[str, Any] | None = statepoint  # type: ignore[assignment]
        # _known: init() found or made the folder through this object. _existed: the
        # folder was there once, so its absence now is news (see _before_write).
        self._known = False
        self._existed = existing
        self._doc: Document | None = None
        self._stores: H5StoreManager | None = None
        self._cwd: list[str] = []
        # Shallow copies share this set and follow each other's state point moves.
        # (Not a WeakSet: copies are equal, so a set would keep only one of them.)
        self._twins: list[weakref.ref[Job]] | None = None

    # ------------------------------------------------------------------ identity
    @property
    def id(self) -> str:
        """The job id: MD5 hex digest of the state point's sorted JSON."""
        return self._id

    @property
    def workspace(self) -> Workspace:
        """The workspace the job belongs to."""
        return self._ws

    project = workspace

    @property
    def path(self) -> str:
        """The absolute path of the job folder ``<root>/workspace/<id>``."""
        # Performance-critical (called per job in loops): str concatenation, not join.
        return self._ws._workspace + _SEP + self._id

    def __str__(self) -> str:
        """Return the job id."""
        return self._id

    def __repr__(self) -> str:
        """Show the workspace and the state point, as ``Job(project=..., statepoint=...)``."""
        try:
            statepoint: Any = self._statepoint_data()
        except (JobsCorruptedError, JobNotFoundError):
            return f"Job(project={self._ws!r}, id={self._id!r})"
        return f"Job(project={self._ws!r}, statepoint={statepoint!r})"

    def __copy__(self) -> Job:
        """Return a copy that stays this job: a state point change moves both, as in signac."""
        twin = Job.__new__(Job)
        for name in Job.__slots__:
            if name != "__weakref__":
                setattr(twin, name, getattr(self, name))
        twin._cwd = []
        if self._twins is None:
            self._twins = [weakref.ref(self)]
            twin._twins = self._twins
        self._twins[:] = [ref for ref in self._twins if ref() is not None]
        self._twins.append(weakref.ref(twin))
        return twin

    def __eq__(self, other: object) -> bool:
        """Jobs are equal when they have the same id in the same workspace."""
        if isinstance(other, Job):
            return self._id == other._id and self._ws.root == other._ws.root
        return NotImplemented

    def __hash__(self) -> int:
        """Hash of workspace root and id."""
        return hash((self._ws.root, self._id))

    # ------------------------------------------------------------------ state point
    def _statepoint_data(self) -> dict[str, Any]:
        if self._sp is None:
            if self._blob is not None:
                self._sp = json.loads(self._blob)
            else:
                try:
                    self._sp = self._ws._statepoint_of(self._id)
                except JobNotFoundError as exc:
                    if self._existed or self._known:
                        raise JobRemovedError(self._id) from exc
                    raise
        return self._sp

    def _get_blob(self) -> str:
        if self._blob is None:
            self._blob = encode(self._statepoint_data())
        return self._blob

    @property
    def statepoint(self) -> StatePoint:
        """The state point: a dict view with attribute access; ``job.statepoint()`` copies it.

        Assigning to a key (``job.sp.a = 2``) moves the job to its new id. Reading the
        property raises :class:`JobsCorruptedError` at once if the state point file is
        corrupted, as in signac.
        """
        self._statepoint_data()
        return StatePoint(self)

    @statepoint.setter
    def statepoint(self, new: Mapping[str, Any]) -> None:
        self.reset_statepoint(new)

    sp = statepoint

    @property
    def cached_statepoint(self) -> Mapping[str, Any]:
        """The state point as a read-only mapping, without a copy (as signac's)."""
        return MappingProxyType(self._statepoint_data())

    def reset_statepoint(self, new: Mapping[str, Any]) -> None:
        """Replace the whole state point, moving the job to the new id.

        Parameters
        ----------
        new
            The new state point, a JSON-encodable mapping with string keys.

        Raises
        ------
        KeyTypeError
            A ``TypeError``: a key is not a string.
        InvalidKeyError
            A ``ValueError``: a key contains a dot.
        DestinationExistsError
            If a job with the new id exists; nothing is changed.
        JobRemovedError
            If the job folder was moved or removed by another process or Job object.
        OSError
            If the job folder cannot be moved.
        """
        check_keys(new)
        self._move_to(json.loads(encode(dict(new))))

    def update_statepoint(self, update: Mapping[str, Any], overwrite: bool = False) -> None:
        """Add keys to the state point (and change existing ones with ``overwrite``).

        Parameters
        ----------
        update
            Keys and values to set.
        overwrite
            Allow changing the value of a key that exists.

        Raises
        ------
        KeyTypeError
            A ``TypeError``: a key is not a string.
        InvalidKeyError
            A ``ValueError``: a key contains a dot.
        StatepointKeyError
            A ``KeyError``: a key exists with another value and ``overwrite`` is false.
        DestinationExistsError
            If a job with the new id exists; nothing is changed.
        JobRemovedError
            If the job folder was moved or removed by another process or Job object.
        OSError
            If the job folder cannot be moved.
        """
        check_keys(update)
        new = json.loads(encode(self._statepoint_data()))
        update = json.loads(encode(dict(update)))
        if not overwrite:
            for key, value in update.items():
                if key in new and new[key] != value:
                    raise StatepointKeyError(key, new[key], value)
        new.update(update)
        self._move_to(new)

    def _move_to(self, new: dict[str, Any]) -> None:
        """Give the job the state point ``new``: rename its folder and rewrite its file.

        The move is crash-safe and safe against other processes moving the same job; see
        :meth:`Workspace._move_job_folder`. A job that was never created moves in memory
        only, as in signac; one whose folder vanished raises instead.
        """
        check_keys(new)
        blob = encode(new)
        new_id = calc_id(new)
        if new_id == self._id:
            self._sp, self._blob = new, blob
            return
        ws = self._ws
        new_path = ws._workspace + _SEP + new_id
        if os.path.isdir(self.path):
            if os.path.exists(new_path + _SEP + STATEPOINT_FILENAME):
                raise DestinationExistsError(new_id)
            ws._move_job_folder(self._id, new_id, blob)
            self._existed = True
        elif self._known or self._existed:
            raise JobRemovedError(self._id)
        # else: never created, so it moves in memory only, onto an existing job too (signac).
        twins = [ref() for ref in self._twins] if self._twins else [self]
        for job in twins:
            if job is None:
                continue
            job._id, job._sp, job._blob = new_id, new, blob
            job._known, job._existed = self._known, self._existed
            job._doc = None
            job._stores = None

    # ------------------------------------------------------------------ life cycle
    def init(self, force: bool = False) -> Job:
        """Create the job folder with its ``signac_statepoint.json`` unless it exists.

        The folder appears complete or not at all: it is made under a temporary name and
        renamed to the id. An existing folder's state point file is checked against the id.

        A job whose folder another process or Job object removed (or moved) is created
        anew, as signac does; writing its document or data through an object that used
        the old folder raises :class:`JobRemovedError` instead.

        Parameters
        ----------
        force
            Rewrite a missing or corrupted state point file instead of raising.

        Returns
        -------
        Job
            This job, for chaining (``ws.open_job(sp).init()``).

        Raises
        ------
        JobsCorruptedError
            If the existing state point file does not match the id (and not ``force``).
        OSError
            If the workspace cannot be written.
        """
        sp_file = self.path + _SEP + STATEPOINT_FILENAME
        if self._known and not force and os.path.exists(sp_file):
            return self
        try:
            with open(sp_file, "rb") as file:
                raw = file.read()
        except FileNotFoundError:
            self._ws._create_job_folder(self._id, self._get_blob())
        else:
            self._check_existing(raw, sp_file, force)
        self._known = self._existed = True
        return self

    def _ensure(self) -> None:
        """Initialise the job on its first use through this object (``job.doc``, ``job.data``)."""
        if self._known:
            return
        if self._existed and not os.path.isdir(self.path):
            raise JobRemovedError(self._id)
        self.init()

    def _before_write(self) -> None:
        """Make sure the job folder is there, holding its state point, before a write.

        Called before each document write and lock and before HDF5 files are opened for
        writing. A job never seen by this object is initialised; one whose folder has
        vanished since is not silently re-created without its state point (the file lock
        would make the folder): :class:`JobRemovedError` is raised.
        """
        if not self._known:
            self._ensure()
            return
        if os.path.exists(self.path + _SEP + STATEPOINT_FILENAME):
            return
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            raise JobRemovedError(self._id) from None
        if set(names) <= {LOCK_FILENAME}:
            # Only the lock's folder, which the file lock made after the job was removed:
            # take it away again.
            try:
                os.unlink(self.path + _SEP + LOCK_FILENAME)
            except FileNotFoundError:
                pass
            try:
                os.rmdir(self.path)
            except OSError:
                pass
            raise JobRemovedError(self._id)
        self.init()  # a folder with files but no state point: repair it as init() does

    def _check_existing(self, raw: bytes, sp_file: str, force: bool) -> None:
        try:
            ok = calc_id(json.loads(raw)) == self._id
        except ValueError:
            ok = False
        if not ok and self._ws._finish_move(self._id) is None:
            if not force:
                raise JobsCorruptedError([self._id])
            atomic_write(sp_file, self._get_blob().encode(), mode=FILE_MODE)

    def exists(self) -> bool:
        """Return whether the job folder exists."""
        return os.path.isdir(self.path)

    def remove(self) -> None:
        """Delete the job folder with everything in it; nothing happens if it is absent."""
        import shutil

        try:
            shutil.rmtree(self.path)
        except FileNotFoundError:
            pass
        self._known = self._existed = False
        self._doc = None
        self._stores = None

    def clear(self) -> None:
        """Delete the job's files and empty its document, keeping the job itself.

        Nothing happens if the job folder does not exist.
        """
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return
        keep = (STATEPOINT_FILENAME, DOCUMENT_FILENAME, LOCK_FILENAME)
        for name in names:
            if name in keep:
                continue
            target = self.path + _SEP + name
            if os.path.isdir(target) and not os.path.islink(target):
                import shutil

                shutil.rmtree(target)
            else:
                os.unlink(target)
        if os.path.exists(self.path + _SEP + DOCUMENT_FILENAME):
            self.document.clear()

    def reset(self) -> None:
        """Clear the job (see :meth:`clear`) and make sure it is initialised."""
        self.clear()
        self.init()

    # ------------------------------------------------------------------ files
    def fn(self, filename: str) -> str:
        """Return the path of ``filename`` inside the job folder.

        Parameters
        ----------
        filename
            A name relative to the job folder.

        Returns
        -------
        str
            The absolute path.
        """
        return self.path + _SEP + filename

    def isfile(self, filename: str) -> bool:
        """Return whether ``filename`` exists as a file in the job folder.

        Parameters
        ----------
        filename
            A name relative to the job folder.

        Returns
        -------
        bool
            True if it is a file.
        """
        return os.path.isfile(self.fn(filename))

    def __enter__(self) -> Job:
        """Initialise the job and change into its folder."""
        self.init()
        self._cwd.append(os.getcwd())
        os.chdir(self.path)
        return self

    def __exit__(self, *exc: object) -> None:
        """Change back to the folder that was current before ``with job:``."""
        self.close()

    def open(self) -> Job:
        """Initialise the job and change into its folder; :meth:`close` changes back.

        ``with job:`` does both.

        Returns
        -------
        Job
            This job.
        """
        return self.__enter__()

    def close(self) -> None:
        """Change back to the folder that was current before :meth:`open`; else nothing."""
        if self._cwd:
            os.chdir(self._cwd.pop())

    # ------------------------------------------------------------------ document and data
    @property
    def document(self) -> Document:
        """The job document (``signac_job_document.json``); reading it initialises the job.

        Assigning a mapping replaces the whole document. Reading or writing it after the
        job folder was moved or removed elsewhere raises :class:`JobRemovedError`.
        """
        self._ensure()
        if self._doc is None:
            self._doc = Document(self.path, before_write=self._before_write)
        return self._doc

    @document.setter
    def document(self, new: Mapping[str, Any]) -> None:
        self.document.reset(dict(new))

    doc = document

    @property
    def stores(self) -> H5StoreManager:
        """The job's HDF5 files: ``job.stores["name"]`` is ``name.h5`` in the job folder.

        Writing to them after the job folder was moved or removed elsewhere raises
        :class:`JobRemovedError`.
        """
        self._ensure()
        if self._stores is None:
            from .h5store import H5StoreManager

            self._stores = H5StoreManager(self.path, before_write=self._before_write)
        return self._stores

    @property
    def data(self) -> H5Store:
        """The job's HDF5 data store ``signac_data.h5`` (``job.stores["signac_data"]``).

        Assigning a mapping replaces the whole file's content.
        """
        return self.stores[DATA_KEY]

    @data.setter
    def data(self, new: Mapping[str, Any]) -> None:
        self.stores[DATA_KEY] = new

