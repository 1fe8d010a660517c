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
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from plams_cli.errors import JobsCorruptedError, WorkspaceError

from ._cache import REBUILD_MISSES, Pair, StatepointCache, signature, stat_statepoints
from ._config import SCHEMA_VERSION as SCHEMA_VERSION
from ._config import open_config
from ._folders import JOB_ID_LINE_RE, JobFolders, read_pair
from ._io import calc_id, check_keys, encode, read_json
from ._tidy import LEFTOVER_AGE_S as LEFTOVER_AGE_S
from ._tidy import Tidying
from .cursor import JobsCursor
from .document import DOCUMENT_FILENAME, PROJECT_DOCUMENT_FILENAME, Document
from .errors import AmbiguousJobIdError, JobNotFoundError
from .filters import ABSENT, Table, compile_query
from .job import Job
from .statepoint import STATEPOINT_FILENAME

if TYPE_CHECKING:
    from .h5store import H5Store, H5StoreManager
    from .schema import ProjectSchema

__all__ = ["Workspace", "Project", "init_workspace", "init_project", "SCHEMA_VERSION"]

_SEP = os.sep
_HEX_RE = re.compile(r"[0-9a-f]{1,32}\Z")
JOB_ID_RE = re.compile(r"[0-9a-f]{32}\Z")


class Workspace(JobFolders, Tidying):
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
        open_config(self._root, create)
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
        return JOB_ID_LINE_RE.findall("\n".join(names))

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
            sig, sp = read_pair(folder + _SEP + STATEPOINT_FILENAME)
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
