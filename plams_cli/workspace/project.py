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
import itertools
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from plams_cli.errors import JobsCorruptedError, WorkspaceError

from ._cache import REBUILD_MISSES, StatepointCache
from ._io import atomic_write, calc_id, check_keys, encode, read_json
from .document import DOCUMENT_FILENAME
from .errors import AmbiguousJobIdError, JobNotFoundError
from .filters import ABSENT, Table, compile_node, statepoint_keys
from .job import Job
from .statepoint import STATEPOINT_FILENAME

__all__ = ["Workspace", "Project", "init_workspace", "SCHEMA_VERSION"]

#: The signac project schema this module reads and writes.
SCHEMA_VERSION = 2

_SEP = os.sep
_CONFIG = ".signac" + _SEP + "config"
_HEX_RE = re.compile(r"[0-9a-f]{1,32}\Z")
JOB_ID_RE = re.compile(r"[0-9a-f]{32}\Z")
_JOB_ID_LINE_RE = re.compile(r"^[0-9a-f]{32}$", re.MULTILINE)
_STATEPOINT_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _schema_version(config_file: str) -> int:
    try:
        with open(config_file, encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError:
        raise
    match = re.search(r"^\s*schema_version\s*=\s*['\"]?(\d+)['\"]?\s*$", text, re.MULTILINE)
    return int(match.group(1)) if match else 1


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
        If ``root`` is not a workspace (and ``create`` is false), or its schema version is
        not signac's 2.

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
            if not create:
                raise WorkspaceError(
                    f"{self._root} is not a workspace (no {_CONFIG}); "
                    f"create one with 'plams workspace init {self._root}'"
                ) from None
            os.makedirs(os.path.dirname(config), exist_ok=True)
            atomic_write(config, f"schema_version = {SCHEMA_VERSION}\n".encode())
            version = SCHEMA_VERSION
        except OSError as exc:
            raise WorkspaceError(f"cannot read {config}: {exc.strerror}") from exc
        if version != SCHEMA_VERSION:
            raise WorkspaceError(
                f"{self._root} has project schema version {version}; only version "
                f"{SCHEMA_VERSION} (signac 2) is supported; migrate it with "
                "'python -m signac migrate'"
            )
        self._cache = StatepointCache(self._root + _SEP + ".signac")
        self._memory: dict[str, dict[str, Any]] = {}
        self._memory_loads = 0
        self._memory_misses = 0
        self._created = 0
        self._tmp_names = itertools.count()

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

    def fn(self, filename: str) -> str:
        """Return the path of ``filename`` inside the project folder."""
        return self._root + _SEP + filename

    def __repr__(self) -> str:
        """Show the root."""
        return f"Workspace({self._root!r})"

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
        return Job(self, self._resolve_id(str(id)))

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
            return []
        # One regex pass over the joined listing beats a match call per name.
        return _JOB_ID_LINE_RE.findall("\n".join(names))

    def _job_id_candidates(self) -> list[str]:
        """Names in the listing that may be ids; the cache checks those it does not know."""
        try:
            names = os.listdir(self._workspace)
        except FileNotFoundError:
            return []
        return [name for name in names if len(name) == 32]

    def _read_statepoint(self, job_id: str) -> dict[str, Any]:
        path = self._workspace + _SEP + job_id + _SEP + STATEPOINT_FILENAME
        try:
            sp = read_json(path)
        except WorkspaceError as exc:
            raise JobsCorruptedError([job_id]) from exc
        if not isinstance(sp, dict) or calc_id(sp) != job_id:
            raise JobsCorruptedError([job_id])
        return sp

    def _create_job_folder(self, job_id: str, blob: str) -> None:
        """Create ``workspace/<id>`` holding the state point file, atomically."""
        target = self._workspace + _SEP + job_id
        tmp = f"{self._workspace}{_SEP}.init-{job_id}-{os.getpid()}-{next(self._tmp_names)}"
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
                atomic_write(sp_file, data)
            return
        self._cache.append(job_id, blob)
        self._note_created()

    def _statepoints(self) -> dict[str, dict[str, Any]]:
        """Return ``{id: state point}`` of every job now in the workspace."""
        ids = self._job_ids()
        memory = self._memory
        if all(job_id in memory for job_id in ids):
            return {job_id: memory[job_id] for job_id in ids}
        statepoints = self._cache.load(ids, self._read_statepoint)
        memory.update(statepoints)
        return statepoints

    def _statepoint_of(self, job_id: str) -> dict[str, Any]:
        """Return the state point of an existing job, from memory, the cache or its file."""
        sp = self._memory.get(job_id)
        if sp is None:
            self._memory_misses += 1
            if self._memory_misses >= 2 and self._memory_loads < 2:
                # Several jobs asked in turn: load every state point at once, so a loop
                # over jobs reads one cache file instead of one file per job.
                self._memory_loads += 1
                self._statepoints()
                sp = self._memory.get(job_id)
            if sp is None:
                sp = self._read_statepoint(job_id)
                self._memory[job_id] = sp
        return sp

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
        """Iterate over the jobs, ordered by id."""
        return iter(self.find_jobs())

    def __len__(self) -> int:
        """Return the number of jobs."""
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

        Parameters
        ----------
        filter
            A MongoDB-style filter (see :mod:`plams_cli.workspace.filters`); keys without
            prefix are state point keys, ``doc.`` keys are document keys.

        Returns
        -------
        list of str
            The matching ids.

        Raises
        ------
        FilterError
            A ``ValueError``: the filter is malformed.
        JobsCorruptedError
            If a job's state point file is unreadable or does not match its id.
        """
        node = compile_node(filter)
        keys = statepoint_keys(filter)
        memory = self._memory
        listed = self._job_ids() if memory else []
        if memory and all(job_id in memory for job_id in listed):
            ids, columns = StatepointCache._from_statepoints(listed, memory, keys)
        else:
            ids, columns = self._cache.load_columns(
                self._job_id_candidates(), self._read_statepoint, keys
            )
        size = len(ids)
        docs: list[Any] = []

        def top(namespace: str, key: str | None) -> list[Any]:
            if namespace == "sp":
                if key is None:
                    rows: list[dict[str, Any]] = [{} for _ in range(size)]
                    for name in sorted(columns):
                        for row, value in zip(rows, columns[name]):
                            if value is not ABSENT:
                                row[name] = value
                    return rows
                return columns.get(key) or [ABSENT] * size
            if namespace == "doc":
                if not docs:
                    docs.extend(self._read_document(job_id) for job_id in ids)
                if key is None:
                    return docs
                return [d.get(key, ABSENT) if type(d) is dict else ABSENT for d in docs]
            return [ABSENT] * size

        rows = node(Table(size, top))
        return sorted(ids[row] for row in rows)

    def _read_document(self, job_id: str) -> Any:
        try:
            return read_json(self._workspace + _SEP + job_id + _SEP + DOCUMENT_FILENAME)
        except FileNotFoundError:
            return ABSENT

    def find_jobs(self, filter: Mapping[str, Any] | None = None) -> list[Job]:
        """Return the jobs matching ``filter``, ordered by id.

        See :meth:`find_job_ids` for the filter; ``plams workspace find`` is the command
        line equivalent.

        Parameters
        ----------
        filter
            A MongoDB-style filter; ``None`` matches every job.

        Returns
        -------
        list of Job
            The matching jobs.
        """
        return [Job(self, job_id) for job_id in self.find_job_ids(filter)]

    def update_cache(self) -> int:
        """Rebuild the state point caches, signac's ``.signac/statepoint_cache.json.gz`` too.

        Returns
        -------
        int
            The number of jobs in the cache.
        """
        statepoints = self._cache.rebuild(self._job_ids(), self._read_statepoint)
        self._cache.write_signac(statepoints)
        return len(statepoints)

    def check(self) -> None:
        """Read every state point file and compare it with its folder's id.

        Raises
        ------
        JobsCorruptedError
            Naming every job whose file is unreadable or does not match.
        """
        bad = []
        for job_id in sorted(self._job_ids()):
            try:
                self._read_statepoint(job_id)
            except JobsCorruptedError:
                bad.append(job_id)
            except FileNotFoundError:
                bad.append(job_id)
        if bad:
            raise JobsCorruptedError(bad)


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
