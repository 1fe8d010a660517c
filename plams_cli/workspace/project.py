"""The workspace: a folder of jobs addressed by state point, on disk as a signac 2 project.

Layout (signac's)::

    ROOT/.signac/config                     "schema_version = 2"
    ROOT/.signac/statepoint_cache.json.gz   optional state point cache
    ROOT/workspace/<id>/signac_statepoint.json
    ROOT/workspace/<id>/signac_job_document.json
    ROOT/workspace/<id>/signac_data.h5

See ``plams workspace init|find|show`` for the command line.
"""

from __future__ import annotations

import atexit
import errno
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from plams_cli._fs import atomic_write, pid_alive, unique_tag
from plams_cli.errors import JobsCorruptedError, NotAWorkspaceError, WorkspaceError

from ._cache import REBUILD_MISSES, Pair, Signature, StatepointCache, signature, stat_statepoints
from ._io import FILE_MODE, calc_id, check_keys, encode, read_json, writer_of
from .cursor import JobsCursor
from .document import DOCUMENT_FILENAME, PROJECT_DOCUMENT_FILENAME, Document
from .errors import (
    AmbiguousJobIdError,
    DestinationExistsError,
    IncompatibleSchemaVersion,
    JobNotFoundError,
    JobRemovedError,
    ProjectNotFoundError,
)
from .filters import ABSENT, Table, compile_query
from .job import Job
from .statepoint import MOVE_FILENAME, STATEPOINT_FILENAME

if TYPE_CHECKING:
    from .h5store import H5Store, H5StoreManager
    from .schema import ProjectSchema

__all__ = ["Workspace", "Project", "init_workspace", "init_project", "SCHEMA_VERSION"]

#: The signac project schema this module reads and writes.
SCHEMA_VERSION = 2

_SEP = os.sep
_CONFIG = ".signac" + _SEP + "config"
_HEX_RE = re.compile(r"[0-9a-f]{1,32}\Z")
JOB_ID_RE = re.compile(r"[0-9a-f]{32}\Z")
_JOB_ID_LINE_RE = re.compile(r"^[0-9a-f]{32}$", re.MULTILINE)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_STATEPOINT_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC
_MOVE_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC
_INIT_PREFIX = ".init-"
#: Temporary files and folders older than this are leftovers of killed writers ...
LEFTOVER_AGE_S = 60.0
#: ... and so are those older than this whose writer's pid no longer runs on this machine
#: (not at once: on a shared file system the writer may be alive on another host).
_DEAD_WRITER_AGE_S = 5.0


def _schema_version(config_file: str) -> int:
    """Read ``schema_version`` from a signac config file (configobj's ``key = value`` lines).

    A file without the key is schema 1, as signac reads it.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    WorkspaceError
        If the file is not a config file or the version is not a number.
    """
    with open(config_file, "rb") as file:
        raw = file.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WorkspaceError(
            f"cannot read {config_file}: it is not a text file, so not a signac config"
        ) from None
    version = 1
    in_section = False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            in_section = True
            continue
        key, equals, value = stripped.partition("=")
        if not equals or not key.strip():
            raise WorkspaceError(
                f"cannot read {config_file}: line {number} is neither 'key = value' nor "
                f"a [section]: {stripped[:60]!r}"
            )
        if key.strip() == "schema_version" and not in_section:
            value = value.split("#", 1)[0].strip().strip("'\"")
            try:
                version = int(value)
            except ValueError:
                raise WorkspaceError(
                    f"cannot read {config_file}: schema_version is {value[:30]!r}, not a number"
                ) from None
    return version


def _refuse_signac_1(root: str) -> None:
    """Raise if ``root`` holds a signac 1 project (``signac.rc``, no ``.signac/config``).

    Raises
    ------
    IncompatibleSchemaVersion
        If ``root/signac.rc`` exists; the project is left as it is.
    """
    if os.path.isfile(root + _SEP + "signac.rc"):
        raise IncompatibleSchemaVersion(
            f"{root} is a signac 1 project (signac.rc, schema version 1); only version "
            f"{SCHEMA_VERSION} (signac 2) is supported; migrate it with 'python -m signac migrate'"
        )


def _read_pair(path: str) -> tuple[Signature, Any]:
    """Read a JSON file with the signature of the file read; ``None`` if it is not JSON."""
    with open(path, "rb") as file:
        sig = signature(os.fstat(file.fileno()))
        raw = file.read()
    try:
        return sig, json.loads(raw)
    except ValueError:
        return sig, None


class Workspace:
    """A signac-compatible data space: jobs addressed by their state points.

    Parameters
    ----------
    root
        The project folder, holding ``.signac/config`` and ``workspace/``.
    create
        Create the project (``.signac/config``) if it does not exist.

    Raises
    ------
    WorkspaceError
        If ``root`` is not a workspace (and ``create`` is false), its config file cannot
        be read, or its schema version is not signac's 2.

    Examples
    --------
    >>> ws = Workspace("sweep", create=True)          # doctest: +SKIP
    >>> job = ws.open_job({"T": 300, "p": 1}).init()  # doctest: +SKIP
    >>> job.doc.energy = -1.5                          # doctest: +SKIP
    >>> [j.sp.T for j in ws.find_jobs({"T": {"$gte": 300}})]  # doctest: +SKIP
    [300]
    """

    def __init__(self, root: str | os.PathLike[str] = ".", *, create: bool = False) -> None:
        self._root = os.path.abspath(os.fspath(root))
        self._workspace = self._root + _SEP + "workspace"
        config = self._root + _SEP + _CONFIG
        try:
            version = _schema_version(config)
        except FileNotFoundError:
            _refuse_signac_1(self._root)
            if not create:
                raise ProjectNotFoundError(
                    f"{self._root} is not a workspace (no {_CONFIG}); "
                    f"create one with 'plams workspace init {self._root}'"
                ) from None
            os.makedirs(os.path.dirname(config), exist_ok=True)
            atomic_write(config, f"schema_version = {SCHEMA_VERSION}\n".encode(), mode=FILE_MODE)
            version = SCHEMA_VERSION
        except WorkspaceError:
            raise  # an OSError too, but already a message of its own
        except IsADirectoryError:
            raise WorkspaceError(f"cannot read {config}: it is a folder") from None
        except NotADirectoryError:
            raise NotAWorkspaceError(f"{self._root} is not a workspace: it is not a folder") from None
        except OSError as exc:
            raise WorkspaceError(f"cannot read {config}: {exc.strerror}") from exc
        if version < SCHEMA_VERSION:
            raise IncompatibleSchemaVersion(
                f"{self._root} has project schema version {version} (signac 1); only version "
                f"{SCHEMA_VERSION} (signac 2) is supported; migrate it with "
                "'python -m signac migrate'"
            )
        if version > SCHEMA_VERSION:
            raise IncompatibleSchemaVersion(
                f"{self._root} has project schema version {version}, newer than version "
                f"{SCHEMA_VERSION} (signac 2) that this plams-cli reads; update plams-cli"
            )
        if create and not os.path.isdir(self._workspace):
            try:
                os.mkdir(self._workspace)
            except FileExistsError:
                pass  # made meanwhile, or a broken link or a file, which find_jobs reports
        self._cache = StatepointCache(self._root + _SEP + ".signac")
        self._document: Document | None = None
        self._stores: H5StoreManager | None = None
        self._memory: dict[str, Pair] = {}
        self._memory_loads = 0
        self._memory_misses = 0
        self._created = 0

    # ------------------------------------------------------------------ basics
    @property
    def root(self) -> str:
        """The absolute path of the project folder."""
        return self._root

    path = root

    @property
    def workspace(self) -> str:
        """The absolute path of the ``workspace`` folder holding the job folders."""
        return self._workspace

    #: The project document's file name in the project folder, as signac's ``Project.FN_DOCUMENT``.
    FN_DOCUMENT = PROJECT_DOCUMENT_FILENAME
    #: The key of ``project.data`` in ``project.stores``, as signac's ``Project.KEY_DATA``.
    KEY_DATA = "signac_data"

    def fn(self, filename: str) -> str:
        """Return the path of ``filename`` inside the project folder."""
        return self._root + _SEP + filename

    def isfile(self, filename: str) -> bool:
        """Return whether ``filename`` is a file in the project folder.

        Parameters
        ----------
        filename
            A name relative to the project folder.

        Returns
        -------
        bool
            True if it is a file.
        """
        return os.path.isfile(self.fn(filename))

    def __str__(self) -> str:
        """Return the root, as ``str(project)`` in signac."""
        return self._root

    def __repr__(self) -> str:
        """Show the root; ``eval`` gives the workspace back."""
        return f"Workspace({self._root!r})"

    # ------------------------------------------------------------------ project data
    @property
    def document(self) -> Document:
        """The project document, ``signac_project_document.json`` in the project folder.

        Written atomically under a file lock, as job documents are (see
        :class:`Document`); assigning a mapping replaces the whole document.
        """
        if self._document is None:
            self._document = Document(self._root, name=PROJECT_DOCUMENT_FILENAME)
        return self._document

    @document.setter
    def document(self, new: Mapping[str, Any]) -> None:
        self.document.reset(dict(new))

    doc = document

    @property
    def stores(self) -> H5StoreManager:
        """The HDF5 files of the project folder: ``project.stores["name"]`` is ``name.h5``."""
        if self._stores is None:
            from .h5store import H5StoreManager

            self._stores = H5StoreManager(self._root)
        return self._stores

    @property
    def data(self) -> H5Store:
        """The project's HDF5 data, ``signac_data.h5`` in the project folder.

        Assigning a mapping replaces the whole file's content.
        """
        return self.stores[self.KEY_DATA]

    @data.setter
    def data(self, new: Mapping[str, Any]) -> None:
        self.stores[self.KEY_DATA] = new

    def __eq__(self, other: object) -> bool:
        """Workspaces are equal when they have the same root."""
        if isinstance(other, Workspace):
            return self._root == other._root
        return NotImplemented

    def __hash__(self) -> int:
        """Hash of the root."""
        return hash(self._root)

    # ------------------------------------------------------------------ jobs
    def open_job(
        self, statepoint: Mapping[str, Any] | None = None, id: str | None = None
    ) -> Job:
        """Return the job of a state point, or of an existing id; nothing is created.

        Parameters
        ----------
        statepoint
            A JSON-encodable mapping with string keys without dots.
        id
            The id (or a unique prefix of it) of an existing job.

        Returns
        -------
        Job
            The job; call :meth:`Job.init` to create it.

        Raises
        ------
        ValueError
            If neither or both of ``statepoint`` and ``id`` are given, or a key has a dot.
        TypeError
            If the state point is not JSON-encodable or has non-string keys.
        JobNotFoundError
            A ``KeyError``: no job has this id or prefix.
        AmbiguousJobIdError
            A ``LookupError``: the prefix matches several jobs.
        """
        if (statepoint is None) == (id is None):
            raise ValueError("give either a state point or an id")
        if statepoint is not None:
            if not isinstance(statepoint, Mapping):
                raise TypeError(f"a state point is a mapping, not {type(statepoint).__name__}")
            check_keys(statepoint)
            return Job(self, blob=encode(statepoint))
        return Job(self, self._resolve_id(str(id)), existing=True)

    def _resolve_id(self, job_id: str) -> str:
        job_id = job_id.strip().lower()
        if not _HEX_RE.match(job_id):
            raise JobNotFoundError(job_id, f"{job_id!r} is not a job id (1-32 hex digits)")
        if len(job_id) == 32:
            if os.path.isdir(self._workspace + _SEP + job_id):
                return job_id
            raise JobNotFoundError(job_id)
        matches = [i for i in self._job_ids() if i.startswith(job_id)]
        if not matches:
            raise JobNotFoundError(job_id, f"no job id in the workspace starts with {job_id!r}")
        if len(matches) > 1:
            raise AmbiguousJobIdError(job_id, matches)
        return matches[0]

    def _job_ids(self) -> list[str]:
        try:
            names = os.listdir(self._workspace)
        except FileNotFoundError:
            if os.path.islink(self._workspace):
                raise WorkspaceError(
                    f"the link {self._workspace} pointing to the workspace is broken"
                ) from None
            return []
        except OSError as exc:
            raise WorkspaceError(
                f"cannot list the workspace folder {self._workspace}: {exc.strerror}"
            ) from exc
        # One regex pass over the joined listing beats a match call per name.
        return _JOB_ID_LINE_RE.findall("\n".join(names))

    def _read_statepoint(self, job_id: str) -> Pair:
        """Read a job's state point from its folder, finishing an interrupted move.

        Returns
        -------
        tuple
            The signature of the file read and the state point.

        Raises
        ------
        JobsCorruptedError
            If the file is missing, unreadable or does not hash to ``job_id``.
        FileNotFoundError
            If the job folder does not exist (e.g. removed since the listing).
        """
        folder = self._workspace + _SEP + job_id
        try:
            sig, sp = _read_pair(folder + _SEP + STATEPOINT_FILENAME)
        except FileNotFoundError:
            if not os.path.isdir(folder):
                raise
            sp = None  # an empty job folder
        except OSError as exc:  # e.g. a file, not a folder, named like a job id
            raise JobsCorruptedError([job_id]) from exc
        else:
            if type(sp) is dict and calc_id(sp) == job_id:
                return sig, sp
        pair = self._finish_move(job_id)
        if pair is None:
            raise JobsCorruptedError([job_id])
        return pair

    def _finish_move(self, job_id: str) -> Pair | None:
        """Complete a state point move that was interrupted after renaming the folder.

        A move writes the new state point to a pending file (``MOVE_FILENAME`` plus a name
        no other move uses) in the job folder, renames the folder to the new id, then
        replaces the state point file by it. If the folder ``job_id`` holds a pending
        file whose state point hashes to ``job_id``, the last step is done here; pending
        files of other ids (moves that lost a race, see :meth:`_move_job_folder`) are
        ignored.

        Returns
        -------
        tuple or None
            The signature and state point now in the folder, or None if there was
            nothing to finish.
        """
        folder = self._workspace + _SEP + job_id
        try:
            names = os.listdir(folder)
        except OSError:
            return None
        sp_file = folder + _SEP + STATEPOINT_FILENAME
        for name in sorted(names):
            if not name.startswith(MOVE_FILENAME):
                continue
            pending = folder + _SEP + name
            try:
                _, sp = _read_pair(pending)
            except OSError:
                continue  # finished or discarded meanwhile
            if type(sp) is not dict or calc_id(sp) != job_id:
                continue
            try:
                os.replace(pending, sp_file)
            except FileNotFoundError:
                pass  # another process finished the same move just now
            except OSError:
                return None  # e.g. a read-only workspace: report the job as it is
            break
        else:
            return None
        try:
            sig, sp = _read_pair(sp_file)
        except OSError:
            return None
        return (sig, sp) if type(sp) is dict and calc_id(sp) == job_id else None

    @staticmethod
    def _unlink(path: str) -> None:
        try:
            os.unlink(path)
        except OSError:
            pass

    def _create_job_folder(self, job_id: str, blob: str) -> None:
        """Create ``workspace/<id>`` holding the state point file, atomically."""
        target = self._workspace + _SEP + job_id
        tmp = f"{self._workspace}{_SEP}{_INIT_PREFIX}{job_id}-{unique_tag()}"
        try:
            os.mkdir(tmp)
        except FileNotFoundError:
            os.makedirs(self._workspace, exist_ok=True)
            os.mkdir(tmp)
        data = blob.encode()
        try:
            fd = os.open(tmp + _SEP + STATEPOINT_FILENAME, _STATEPOINT_OPEN_FLAGS, 0o666)
            try:
                os.write(fd, data)
                sig = signature(os.fstat(fd))
            finally:
                os.close(fd)
            os.rename(tmp, target)
        except OSError as exc:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            # The folder exists (another process, or an empty/partial folder): make sure
            # it holds a state point file, leaving a valid one alone.
            sp_file = target + _SEP + STATEPOINT_FILENAME
            if not os.path.exists(sp_file):
                atomic_write(sp_file, data, mode=FILE_MODE)
            return
        self._cache.append(job_id, blob, sig)
        self._note_created()

    def _lost_move(self, old_id: str, new_id: str) -> WorkspaceError:
        """The error for a move whose folder another process moved or removed first."""
        if os.path.exists(self._workspace + _SEP + new_id + _SEP + STATEPOINT_FILENAME):
            return DestinationExistsError(new_id)
        return JobRemovedError(
            old_id,
            f"job {old_id} was moved or removed by another process while this one moved "
            f"it to {new_id}; nothing was changed by this move",
        )

    def _move_job_folder(self, old_id: str, new_id: str, blob: str) -> None:
        """Give the job folder ``old_id`` the state point ``blob`` and the name ``new_id``.

        Crash-safe: (1) the new state point is written to a pending file inside the
        folder, named ``MOVE_FILENAME`` plus a tag no other move uses, (2) the folder is
        renamed, (3) the pending file replaces the state point file. Killed after (1),
        the folder is intact and :meth:`check` deletes the pending file; killed after
        (2), reading the job finishes (3) (:meth:`_finish_move`). At no point does a
        folder hold a state point that is not its own without a pending file that
        repairs it.

        Safe against other processes moving the same job: each move has its own pending
        file, so one cannot overwrite another's, and only a pending file that hashes to
        the folder's name is ever installed. The move whose rename comes second finds
        the folder gone and raises; its pending file travels with the folder, where it
        is ignored and later deleted by :meth:`check`.

        Raises
        ------
        DestinationExistsError
            If a job ``new_id`` exists; nothing is changed.
        JobRemovedError
            If the folder ``old_id`` was moved or removed by another process first.
        OSError
            If the folder cannot be renamed or written; nothing is changed.
        """
        old = self._workspace + _SEP + old_id
        new = self._workspace + _SEP + new_id
        name = f"{MOVE_FILENAME}.{unique_tag()}"
        pending = old + _SEP + name
        data = blob.encode()
        try:
            fd = os.open(pending, _MOVE_OPEN_FLAGS, 0o666)
        except FileNotFoundError:
            raise self._lost_move(old_id, new_id) from None
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)  # complete on disk before the rename makes it the one to use
        except BaseException:
            os.close(fd)
            self._unlink(pending)
            raise
        os.close(fd)
        try:
            # rename() replaces an empty folder but fails on one holding files, which is
            # how a job created meanwhile by another process is noticed.
            os.rename(old, new)
        except BaseException as exc:
            self._unlink(pending)
            if isinstance(exc, OSError) and exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise DestinationExistsError(new_id) from exc
            if isinstance(exc, FileNotFoundError):
                raise self._lost_move(old_id, new_id) from exc
            raise
        sp_file = new + _SEP + STATEPOINT_FILENAME
        try:
            os.replace(new + _SEP + name, sp_file)
        except FileNotFoundError:
            # A reader finished the move for us, or the folder was moved on by another
            # process at once: make sure whatever is named new_id holds its own state point.
            try:
                _, current = _read_pair(sp_file)
            except OSError:
                current = None
            if type(current) is not dict or calc_id(current) != new_id:
                try:
                    atomic_write(sp_file, data, mode=FILE_MODE)
                except FileNotFoundError:
                    return  # moved on already: the next move carried our pending file

        except OSError:
            os.rename(new, old)  # roll back: the old state point is still in place
            self._unlink(pending)
            raise
        try:
            sig = signature(os.stat(sp_file))
        except FileNotFoundError:
            return  # moved on by another process already; nothing to remember
        self._memory.pop(old_id, None)
        self._memory[new_id] = (sig, json.loads(blob))
        self._cache.append(new_id, blob, sig)

    def _statepoint_of(self, job_id: str) -> dict[str, Any]:
        """Return the state point of an existing job, from memory, the cache or its file.

        Raises
        ------
        JobsCorruptedError
            If the job's state point file is missing, unreadable or not its own.
        JobNotFoundError
            If the job folder does not exist.
        """
        pair = self._memory.get(job_id)
        if pair is not None:
            try:
                sig = signature(
                    os.stat(self._workspace + _SEP + job_id + _SEP + STATEPOINT_FILENAME)
                )
            except OSError:
                sig = None
            if sig == pair[0]:
                return pair[1]
        else:
            self._memory_misses += 1
            if self._memory_misses >= 2 and self._memory_loads < 2:
                # Several jobs asked in turn: load every state point at once, so a loop
                # over jobs reads one cache file instead of one file per job.
                self._memory_loads += 1
                ids = self._job_ids()
                pairs, _ = self._cache.load(
                    ids, stat_statepoints(self._workspace, ids), self._read_statepoint
                )
                self._memory.update(pairs)
                pair = pairs.get(job_id)
                if pair is not None:
                    return pair[1]
        try:
            pair = self._read_statepoint(job_id)
        except FileNotFoundError:
            raise JobNotFoundError(job_id) from None
        self._memory[job_id] = pair
        return pair[1]

    def _note_created(self) -> None:
        self._created += 1
        if self._created == 1:
            atexit.register(self._flush_at_exit)

    def _flush_at_exit(self) -> None:
        # Rebuild the cache when this process created many jobs, so the next process
        # does not parse them all from the journal. Best effort: never fail the exit.
        try:
            if self._created >= min(REBUILD_MISSES, max(1, len(self) // 100)):
                self._cache.rebuild(self._job_ids(), self._read_statepoint)
            self._cache.close()
        except Exception:  # pragma: no cover - a cache must not break interpreter exit
            pass

    def __iter__(self) -> Iterator[Job]:
        """Iterate over the jobs, ordered by id; state points are read when used.

        Every job folder is listed, corrupted ones too (as signac does): reading the
        state point of such a job raises :class:`JobsCorruptedError`.
        """
        return iter(self.find_jobs())

    def __len__(self) -> int:
        """Return the number of job folders, as many as iteration gives."""
        return len(self._job_ids())

    def __contains__(self, job: object) -> bool:
        """Return whether ``job`` (a :class:`Job` or an id) exists in this workspace."""
        if isinstance(job, Job):
            return job.workspace == self and os.path.isdir(job.path)
        if isinstance(job, str) and JOB_ID_RE.match(job):
            return os.path.isdir(self._workspace + _SEP + job)
        return False

    def find_job_ids(self, filter: Mapping[str, Any] | None = None) -> list[str]:
        """Return the ids of the jobs matching ``filter``, sorted.

        The ids are those signac's ``Project.find_jobs`` finds for the same filter (see
        :mod:`plams_cli.workspace.filters`). Without a filter, every job folder is
        listed and no state point is read, so the result agrees with ``len`` and
        iteration even when some jobs are corrupted.

        Parameters
        ----------
        filter
            A MongoDB-style filter; keys without prefix are state point keys, ``doc.``
            keys are document keys.

        Returns
        -------
        list of str
            The matching ids.

        Raises
        ------
        FilterError
            A ``ValueError``: the filter is malformed, or signac would raise for it on
            this data.
        JobsCorruptedError
            If a filter is given and some job's state point file is missing, unreadable
            or does not match its id; the error names every such job.
        """
        query = compile_query(filter)
        listed = self._job_ids()
        if query.matches_all:
            return sorted(listed)
        ids, columns, corrupted = self._cache.load_columns(
            listed, stat_statepoints(self._workspace, listed), self._read_statepoint, query.keys
        )
        if corrupted:
            raise JobsCorruptedError(sorted(corrupted))
        size = len(ids)
        docs: list[Any] = []

        def top(namespace: str, key: str | None) -> list[Any]:
            if namespace == "sp":
                if key is None:
                    rows: list[dict[str, Any]] = [{} for _ in range(size)]
                    for name in sorted(columns):
                        for row, value in zip(rows, columns[name], strict=False):
                            if value is not ABSENT:
                                row[name] = value
                    return rows
                return columns.get(key) or [ABSENT] * size
            if namespace == "doc" and query.needs_document:
                if not docs:
                    docs.extend(self._read_document(job_id) for job_id in ids)
                if key is None:
                    return docs
                return [d.get(key, ABSENT) if type(d) is dict else ABSENT for d in docs]
            return [ABSENT] * size

        rows = query.rows(Table(size, top))
        return sorted(ids[row] for row in rows)

    def _read_document(self, job_id: str) -> Any:
        try:
            return read_json(self._workspace + _SEP + job_id + _SEP + DOCUMENT_FILENAME)
        except FileNotFoundError:
            return ABSENT

    def find_jobs(self, filter: Mapping[str, Any] | None = None) -> JobsCursor:
        """Return the jobs matching ``filter``, ordered by id, as a :class:`JobsCursor`.

        See :meth:`find_job_ids` for the filter; ``plams workspace find`` is the command
        line equivalent. The cursor behaves as signac's: see :class:`JobsCursor`.

        Parameters
        ----------
        filter
            A MongoDB-style filter; ``None`` matches every job.

        Returns
        -------
        JobsCursor
            The matching jobs.

        Raises
        ------
        FilterError
            A ``ValueError``: the filter is malformed.
        JobsCorruptedError
            If a filter is given and some job's state point file is broken.
        """
        return JobsCursor(self, filter)

    def groupby(
        self, key: Any = None, default: Any = None
    ) -> Iterator[tuple[Any, Iterator[Job]]]:
        """Group every job by state point or document values; see :meth:`JobsCursor.groupby`."""
        yield from self.find_jobs().groupby(key, default=default)

    def to_dataframe(self, *args: Any, **kwargs: Any) -> Any:  # a pandas.DataFrame; pandas is optional and untyped
        """Return every job as a pandas DataFrame; see :meth:`JobsCursor.to_dataframe`."""
        return self.find_jobs().to_dataframe(*args, **kwargs)

    def detect_schema(
        self, exclude_const: bool = False, subset: Iterable[Job | str] | None = None
    ) -> ProjectSchema:
        """Return the state point schema: each dotted key with its values, by type.

        ``plams workspace schema`` is the command line equivalent.

        Parameters
        ----------
        exclude_const
            Leave out keys every job has with the same value.
        subset
            Only these jobs (or ids).

        Returns
        -------
        ProjectSchema
            As signac's ``Project.detect_schema`` gives for the same jobs.

        Raises
        ------
        JobsCorruptedError
            If some job's state point file is broken.
        """
        from .schema import detect_schema

        ids = self._job_ids()
        if subset is not None:
            wanted = {str(job) for job in subset}
            ids = [job_id for job_id in ids if job_id in wanted]
        pairs, corrupted = self._cache.load(
            ids, stat_statepoints(self._workspace, ids), self._read_statepoint
        )
        if corrupted:
            raise JobsCorruptedError(sorted(corrupted))
        # In listing order, as signac visits the jobs: the order of the types shown.
        return detect_schema((pairs[job_id][1] for job_id in ids if job_id in pairs), exclude_const)

    def min_len_unique_id(self) -> int:
        """Return the shortest id prefix length that tells every job apart, as signac's.

        Returns
        -------
        int
            The length.
        """
        ids = self._job_ids()
        for length in range(32):
            if len({job_id[:length] for job_id in ids}) == len(ids):
                return length
        return 32

    def update_cache(self) -> int:
        """Rebuild the state point caches, signac's ``.signac/statepoint_cache.json.gz`` too.

        Returns
        -------
        int
            The number of jobs in the cache.

        Raises
        ------
        JobsCorruptedError
            If some job's state point file is broken; signac's cache is not written.
        """
        ids = self._job_ids()
        pairs, corrupted = self._cache.rebuild(
            ids, self._read_statepoint, sigs=stat_statepoints(self._workspace, ids)
        )
        if corrupted:
            raise JobsCorruptedError(sorted(corrupted))
        self._cache.write_signac({job_id: sp for job_id, (_, sp) in pairs.items()})
        return len(pairs)

    def check(self) -> list[str]:
        """Read every state point file, compare it with its folder's id and tidy up.

        A state point move that was interrupted is finished. Leftovers of writers that
        were killed are deleted: ``workspace/.init-*`` folders of job creations, pending
        state points of moves (``.signac_statepoint.json.moving.*``) that are not the
        folder's own, and the ``*.tmp`` files of atomic writes (documents, state points,
        caches). A leftover is one older than a minute, or older than five seconds
        whose writer's process id no longer runs on this machine; younger ones may
        belong to a writer at work.

        Returns
        -------
        list of str
            The paths deleted, sorted.

        Raises
        ------
        JobsCorruptedError
            Naming every job whose file is missing, unreadable or does not match; the
            leftovers are deleted first, and the error's ``removed`` attribute lists them.
        """
        import time

        now = time.time()
        removed: list[str] = []
        try:
            names = os.listdir(self._workspace)
        except FileNotFoundError:
            names = []
        for name in names:
            path = self._workspace + _SEP + name
            if name.startswith(_INIT_PREFIX) and _is_leftover(path, name, now):
                import shutil

                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        bad = []
        for job_id in sorted(_JOB_ID_LINE_RE.findall("\n".join(names))):
            try:
                self._read_statepoint(job_id)
            except JobsCorruptedError:
                bad.append(job_id)
                continue
            except FileNotFoundError:
                continue  # removed meanwhile
            removed.extend(self._tidy_job_folder(job_id, now))
        config_dir = self._root + _SEP + ".signac"
        try:
            config_names = os.listdir(config_dir)
        except OSError:
            config_names = []
        for name in config_names:
            path = config_dir + _SEP + name
            if (
                name.endswith(".tmp")
                and writer_of(name) is not None
                and _is_leftover(path, name, now)
                and _unlinked(path)
            ):
                removed.append(path)
        removed.sort()
        if bad:
            error = JobsCorruptedError(bad)
            error.removed = removed  # type: ignore[attr-defined]
            raise error
        return removed

    def repair(self, job_ids: Iterable[str] | None = None) -> None:
        """Rewrite lost or corrupted state point files from the caches, as signac's ``repair``.

        A job whose file is missing or unreadable gets the state point the caches (ours
        and signac's ``statepoint_cache.json.gz``) remember for its id; a folder whose
        file holds a valid state point of another id is renamed to that id. Interrupted
        moves are finished first, as :meth:`check` does.

        Parameters
        ----------
        job_ids
            The jobs to repair; every job by default.

        Raises
        ------
        JobsCorruptedError
            Naming the jobs that could not be repaired (no state point remembered, or the
            right id is taken by another folder).
        """
        remembered = self._cache.remembered()
        remembered.update((job_id, sp) for job_id, (_, sp) in self._memory.items())
        failed = []
        for job_id in self._job_ids() if job_ids is None else [str(i) for i in job_ids]:
            try:
                self._read_statepoint(job_id)
                continue
            except JobsCorruptedError:
                pass
            except FileNotFoundError:
                failed.append(job_id)
                continue
            folder = self._workspace + _SEP + job_id
            sp = remembered.get(job_id)
            if sp is None or calc_id(sp) != job_id:
                try:
                    _, sp = _read_pair(folder + _SEP + STATEPOINT_FILENAME)
                except OSError:
                    sp = None
                if type(sp) is dict and calc_id(sp) != job_id:
                    try:
                        os.rename(folder, self._workspace + _SEP + calc_id(sp))
                    except OSError:
                        failed.append(job_id)
                    continue
                failed.append(job_id)
                continue
            try:
                atomic_write(folder + _SEP + STATEPOINT_FILENAME, encode(sp).encode(), mode=FILE_MODE)
            except OSError:
                failed.append(job_id)
                continue
            self._memory.pop(job_id, None)
        if failed:
            raise JobsCorruptedError(sorted(failed))

    def _tidy_job_folder(self, job_id: str, now: float) -> list[str]:
        """Delete leftover pending moves and temporary files of a job with a valid state point."""
        folder = self._workspace + _SEP + job_id
        try:
            names = os.listdir(folder)
        except OSError:
            return []
        removed = []
        for name in names:
            path = folder + _SEP + name
            if name.startswith(MOVE_FILENAME):
                try:
                    _, sp = _read_pair(path)
                except OSError:
                    continue
                # One hashing to this folder is redundant now that the state point is
                # right (its mover falls back to checking the file); any other is a
                # leftover once old enough.
                own = type(sp) is dict and calc_id(sp) == job_id
                if (own or _is_leftover(path, name, now)) and _unlinked(path):
                    removed.append(path)
            elif name.endswith(".tmp") and writer_of(name) is not None:
                if _is_leftover(path, name, now) and _unlinked(path):
                    removed.append(path)
        return removed


def _is_leftover(path: str, name: str, now: float) -> bool:
    """Whether a temporary file or folder is old enough, or its writer dead, to delete it.

    A writer is known dead only when it ran on this host (its tag names the host) and
    its pid no longer runs; one on another host of a shared file system may be at work.
    """
    try:
        age = now - os.lstat(path).st_mtime
    except OSError:
        return False
    if age >= LEFTOVER_AGE_S:
        return True
    writer = writer_of(name)
    return (
        writer is not None
        and writer.here
        and age >= _DEAD_WRITER_AGE_S
        and not pid_alive(writer.pid)
    )


def _unlinked(path: str) -> bool:
    try:
        os.unlink(path)
    except OSError:
        return False
    return True


Project = Workspace


def init_workspace(root: str | os.PathLike[str] = ".") -> Workspace:
    """Create a workspace at ``root`` (if needed) and return it.

    ``plams workspace init ROOT`` is the command line equivalent.

    Parameters
    ----------
    root
        The project folder.

    Returns
    -------
    Workspace
        The workspace.
    """
    return Workspace(root, create=True)


def init_project(path: str | os.PathLike[str] | None = None) -> Workspace:
    """Create a workspace at ``path`` (default: the current folder), as signac's ``init_project``.

    Parameters
    ----------
    path
        The project folder.

    Returns
    -------
    Workspace
        The workspace.

    Raises
    ------
    IncompatibleSchemaVersion
        If ``path`` holds a project of another schema version (e.g. a signac 1 one); it is
        left as it is.
    """
    return Workspace(os.getcwd() if path is None else path, create=True)
