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
import json
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from plams_cli.errors import JobsCorruptedError, WorkspaceError

from ._cache import REBUILD_MISSES, Pair, Signature, StatepointCache, signature, stat_statepoints
from ._io import atomic_write, calc_id, check_keys, encode, read_json
from .document import DOCUMENT_FILENAME
from .errors import AmbiguousJobIdError, DestinationExistsError, JobNotFoundError
from .filters import ABSENT, Table, compile_query
from .job import Job
from .statepoint import MOVE_FILENAME, STATEPOINT_FILENAME

__all__ = ["Workspace", "Project", "init_workspace", "SCHEMA_VERSION"]

#: The signac project schema this module reads and writes.
SCHEMA_VERSION = 2

_SEP = os.sep
_CONFIG = ".signac" + _SEP + "config"
_HEX_RE = re.compile(r"[0-9a-f]{1,32}\Z")
JOB_ID_RE = re.compile(r"[0-9a-f]{32}\Z")
_JOB_ID_LINE_RE = re.compile(r"^[0-9a-f]{32}$", re.MULTILINE)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_STATEPOINT_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC
_MOVE_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _CLOEXEC


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
            if not create:
                raise WorkspaceError(
                    f"{self._root} is not a workspace (no {_CONFIG}); "
                    f"create one with 'plams workspace init {self._root}'"
                ) from None
            os.makedirs(os.path.dirname(config), exist_ok=True)
            atomic_write(config, f"schema_version = {SCHEMA_VERSION}\n".encode())
            version = SCHEMA_VERSION
        except WorkspaceError:
            raise  # an OSError too, but already a message of its own
        except IsADirectoryError:
            raise WorkspaceError(f"cannot read {config}: it is a folder") from None
        except OSError as exc:
            raise WorkspaceError(f"cannot read {config}: {exc.strerror}") from exc
        if version < SCHEMA_VERSION:
            raise WorkspaceError(
                f"{self._root} has project schema version {version} (signac 1); only version "
                f"{SCHEMA_VERSION} (signac 2) is supported; migrate it with "
                "'python -m signac migrate'"
            )
        if version > SCHEMA_VERSION:
            raise WorkspaceError(
                f"{self._root} has project schema version {version}, newer than version "
                f"{SCHEMA_VERSION} (signac 2) that this plams-cli reads; update plams-cli"
            )
        self._cache = StatepointCache(self._root + _SEP + ".signac")
        self._memory: dict[str, Pair] = {}
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

        A move writes the new state point to ``MOVE_FILENAME`` in the job folder, renames
        the folder to the new id, then replaces the state point file by it. If the folder
        ``job_id`` holds a pending state point that hashes to ``job_id``, the last step
        is done here.

        Returns
        -------
        tuple or None
            The signature and state point now in the folder, or None if there was
            nothing to finish.
        """
        folder = self._workspace + _SEP + job_id
        pending = folder + _SEP + MOVE_FILENAME
        try:
            _, sp = _read_pair(pending)
        except OSError:
            return None
        if type(sp) is not dict or calc_id(sp) != job_id:
            return None
        try:
            os.replace(pending, folder + _SEP + STATEPOINT_FILENAME)
        except FileNotFoundError:
            pass  # another process finished the same move just now
        except OSError:
            return None  # e.g. a read-only workspace: report the job as it is
        try:
            sig, sp = _read_pair(folder + _SEP + STATEPOINT_FILENAME)
        except OSError:
            return None
        return (sig, sp) if type(sp) is dict and calc_id(sp) == job_id else None

    def _discard_pending_move(self, job_id: str) -> None:
        """Delete the pending state point of a move killed before its folder was renamed."""
        try:
            os.unlink(self._workspace + _SEP + job_id + _SEP + MOVE_FILENAME)
        except OSError:
            pass

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
                atomic_write(sp_file, data)
            return
        self._cache.append(job_id, blob, sig)
        self._note_created()

    def _move_job_folder(self, old_id: str, new_id: str, blob: str) -> None:
        """Give the job folder ``old_id`` the state point ``blob`` and the name ``new_id``.

        Crash-safe: (1) the new state point is written to ``MOVE_FILENAME`` inside the
        folder, (2) the folder is renamed, (3) the pending file replaces the state point
        file. Killed after (1), the folder is intact and the pending file is deleted by
        :meth:`check` or the next move; killed after (2), reading the job finishes (3)
        (:meth:`_finish_move`). At no point does a folder hold a state point that is not
        its own without the pending file that repairs it.

        Raises
        ------
        DestinationExistsError
            If a job ``new_id`` exists; nothing is changed.
        OSError
            If the folder cannot be renamed or written; nothing is changed.
        """
        old = self._workspace + _SEP + old_id
        new = self._workspace + _SEP + new_id
        pending = old + _SEP + MOVE_FILENAME
        data = blob.encode()
        fd = os.open(pending, _MOVE_OPEN_FLAGS, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)  # complete on disk before the rename makes it the one to use
        except BaseException:
            os.close(fd)
            self._discard_pending_move(old_id)
            raise
        os.close(fd)
        try:
            # rename() replaces an empty folder but fails on one holding files, which is
            # how a job created meanwhile by another process is noticed.
            os.rename(old, new)
        except BaseException as exc:
            self._discard_pending_move(old_id)
            if isinstance(exc, OSError) and exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise DestinationExistsError(new_id) from exc
            raise
        sp_file = new + _SEP + STATEPOINT_FILENAME
        try:
            os.replace(new + _SEP + MOVE_FILENAME, sp_file)
        except FileNotFoundError:
            # A reader finished the move for us, or check() took the pending file for a
            # leftover just before the rename: make sure the state point is the new one.
            try:
                _, current = _read_pair(sp_file)
            except OSError:
                current = None
            if current is None or calc_id(current) != new_id:
                atomic_write(sp_file, data)
        except OSError:
            os.rename(new, old)  # roll back: the old state point is still in place
            self._discard_pending_move(old_id)
            raise
        sig = signature(os.stat(sp_file))
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
                        for row, value in zip(rows, columns[name]):
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

        Raises
        ------
        FilterError
            A ``ValueError``: the filter is malformed.
        JobsCorruptedError
            If a filter is given and some job's state point file is broken.
        """
        return [Job(self, job_id) for job_id in self.find_job_ids(filter)]

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

    def check(self) -> None:
        """Read every state point file, compare it with its folder's id and tidy up.

        A state point move that was interrupted is finished, and the pending state point
        a move killed before renaming its folder left behind is deleted.

        Raises
        ------
        JobsCorruptedError
            Naming every job whose file is missing, unreadable or does not match.
        """
        bad = []
        for job_id in sorted(self._job_ids()):
            try:
                self._read_statepoint(job_id)
            except JobsCorruptedError:
                bad.append(job_id)
            except FileNotFoundError:
                continue  # removed meanwhile
            else:
                self._discard_pending_move(job_id)
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
