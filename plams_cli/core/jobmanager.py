"""``JobManager``: the working folder, unique job names, and rerun prevention by hash.

The life cycle (:mod:`plams_cli.core.lifecycle`) asks it, for each job, to track it
(:meth:`JobManager.track`), register it (:meth:`JobManager.register`), find an identical
job (:meth:`JobManager.check_hash`) and to note its end (:meth:`JobManager.job_ended`).
"""

from __future__ import annotations

import os
import shutil
import threading
from typing import TYPE_CHECKING

from plams_cli.core._files import normal_path
from plams_cli.core.jobindex import SavedJob
from plams_cli.core.logger import log
from plams_cli.core.pickling import read_job
from plams_cli.core.settings import Settings
from plams_cli.core.status import STATUS_VALUES, JobStatus
from plams_cli.errors import FileError, PlamsError
from plams_cli.runners.local import waiting

if TYPE_CHECKING:
    from plams_cli.core.jobs import Job

__all__ = ["JobManager", "make_folder"]

_MAX_FOLDER_TRIES = 10_000


def make_folder(path: str, folder: str, counter_len: int = 3) -> str:
    """Create and return the first free folder among ``folder``, ``folder.002``, … in ``path``.

    Each name is taken with ``os.mkdir``, which fails if the name exists, so processes
    starting at the same moment each get a folder of their own.

    Raises
    ------
    FileError
        ``path`` does not exist, or no folder can be made there.
    """
    if not os.path.isdir(path):
        raise FileError(f"cannot make a working folder in {path}: it is not an existing folder")
    for number in range(1, _MAX_FOLDER_TRIES):
        name = folder if number == 1 else f"{folder}.{number:0{counter_len}d}"
        candidate = os.path.join(path, name)
        try:
            os.mkdir(candidate)
        except FileExistsError:
            continue
        except FileNotFoundError as exc:
            raise FileError(f"cannot create {candidate}: its parent folder does not exist") from exc
        except OSError as exc:
            raise FileError(f"cannot create {candidate}: {exc.strerror}") from exc
        return candidate
    raise FileError(f"no free working folder name left for {folder} in {path}")


#: the statuses of a job that ended well, whose files another may reuse
_REUSABLE = (JobStatus.SUCCESSFUL, JobStatus.COPIED)


def _remove_empty_folders(folder: str, holding: frozenset[str] | set[str] = frozenset(),
                          plain: frozenset[str] | set[str] = frozenset()) -> bool:
    """Remove the empty folders under ``folder``, deepest first; return whether ``folder`` is left empty.

    One ``scandir`` per folder (``os.walk`` plus a ``listdir`` per folder took about twice
    as long over 20,000 job folders on tmpfs); symbolic links are not followed.
    ``holding`` names folders known to hold files (job folders whose jobs listed files):
    such a folder without subfolders (a link count of 2, where the file system counts
    them) is not read at all, a ``stat`` instead of a ``scandir`` per job; those also in
    ``plain`` are known to have no subfolders and are not even looked at.
    """
    try:
        with os.scandir(folder) as scan:
            entries = list(scan)
    except OSError:
        return False
    empty = True
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if entry.path in plain:
                empty = False
                continue
            if entry.path in holding:
                try:
                    if entry.stat(follow_symlinks=False).st_nlink == 2:
                        empty = False
                        continue
                except OSError:
                    pass
            if _remove_empty_folders(entry.path, holding, plain):
                try:
                    os.rmdir(entry.path)
                    continue
                except OSError:
                    pass
        empty = False
    return empty


def _lists_top_level_file(job: Job) -> bool:
    """Whether ``job``'s results list a file directly in its folder (so the folder is not empty)."""
    files = job.results.files
    # (the first name decides for nearly every job, without a generator)
    return bool(files) and (os.sep not in files[0] or any(os.sep not in name for name in files))


class JobManager:
    """Owns a working folder and the jobs run in it.

    Parameters
    ----------
    settings
        The ``config.jobmanager`` branch: ``counter_len``, ``hashing``,
        ``remove_empty_directories``.
    path
        Where the working folder is made (default: the current folder).
    folder
        Its name (default ``plams_workdir``); when taken, ``folder.002``, … is used.
    use_existing_folder
        Take ``folder`` as it is, even if it exists (used to restart in place).

    Attributes
    ----------
    jobs : list of Job
        Jobs registered, in order.
    names : dict
        How many jobs were given each base name.
    hashes : dict
        Hash -> job, for rerun prevention; loaded jobs join it.
    """

    def __init__(self, settings: Settings, path: str | None = None, folder: str | None = None,
                 use_existing_folder: bool = False) -> None:
        self.settings = settings
        self.jobs: list[Job] = []
        self.names: dict[str, int] = {}
        self.hashes: dict[str, Job] = {}
        self._loaded_paths: dict[str, Job] = {}  # folder -> job loaded from it
        self._restart_source: tuple[str, str] | None = None
        #: held while a job takes the files of another (the folder of a loaded job may move meanwhile)
        self.folder_lock = threading.Lock()
        self._lock = threading.RLock()
        self._active: dict[int, Job] = {}
        self._made: set[str] = set()  # folders register() made (removed if their job never starts)
        #: folders register() left to a restart's rename -> the saved job of NAME.res to move in (see make_folder)
        self._deferred: dict[str, SavedJob] = {}
        #: jobs cancelled before they were registered (they have no folder), for the summary
        self.not_started: list[Job] = []
        self._all_done = threading.Condition(self._lock)
        self._waiters = 0  # threads in wait_all(): job_ended() wakes them only when there are any
        base = os.path.abspath(os.path.expanduser(path)) if path else os.getcwd()
        name = folder or "plams_workdir"
        if use_existing_folder:
            workdir = os.path.join(base, name)
            try:
                os.makedirs(workdir, exist_ok=True)
            except OSError as exc:
                raise FileError(f"cannot use working folder {workdir}: {exc.strerror}") from exc
        else:
            workdir = make_folder(base, name, int(settings.get("counter_len", 3)))
        self.workdir = os.path.abspath(workdir)
        self.path, self.folder = os.path.split(self.workdir)

    def __repr__(self) -> str:
        return f"JobManager({self.workdir!r}, {len(self.jobs)} jobs)"

    # --- names and folders -----------------------------------------------------------
    def register(self, job: Job, *, defer_folder: bool = False) -> None:
        """Give ``job`` a unique name and its folder (inside its parent's, if any).

        With ``defer_folder`` (nothing of the job uses its folder before its hash is
        known), a restart does not make the folder of a job whose namesake, loaded from
        ``NAME.res``, belongs in it: if the two are identical that folder moves in
        (:meth:`move_loaded`), else :meth:`make_folder` makes it. One ``mkdir`` less per
        reused job.
        """
        with self._lock:
            base = job.name
            parent_folder = job.parent.path if job.parent is not None and job.parent.path else self.workdir
            if base not in self.names:
                # The common case, in one system call: the name is new and its folder can be
                # made (or is a folder already, as in a restart in place).
                path = parent_folder + os.sep + base
                twin = self._moves_in(path, base) if defer_folder and self._restart_source is not None else None
                if twin is not None:
                    self.names[base] = 1
                    job.assign_name(base)
                    job.path = path
                    job.jobmanager = self
                    self.jobs.append(job)
                    self._deferred[path] = twin
                    return
                try:
                    os.mkdir(path)
                    made = True
                except OSError:
                    made = False
                if made or os.path.isdir(path):
                    self.names[base] = 1
                    job.assign_name(base)
                    job.path = path
                    job.jobmanager = self
                    self.jobs.append(job)
                    if made:
                        self._made.add(path)
                    return
        self._register_renamed(job)

    def _moves_in(self, path: str, name: str) -> SavedJob | None:
        """The saved job ``name`` of ``NAME.res`` a restart moves into the folder ``path`` (in ``NAME``), if any."""
        source = self._restart_source
        assert source is not None
        workdir, res = source
        if not path.startswith(workdir + os.sep):
            return None
        loaded: object = self._loaded_paths.get(res + path[len(workdir):])
        return loaded if type(loaded) is SavedJob and loaded.name == name else None

    def make_folder(self, job: Job) -> bool:
        """Make the folder :meth:`register` left out for ``job`` (``defer_folder``), and say whether it did.

        Call it before anything uses the job's folder (its files are written, linked or
        copied there); it does nothing for a job whose folder was made or moved in.

        Raises
        ------
        OSError
            The folder cannot be made.
        """
        path = job.path
        if path is None or path not in self._deferred:
            return False
        with self._lock:
            if path not in self._deferred:
                return False
            del self._deferred[path]
            os.mkdir(path)
            self._made.add(path)
        return True

    def _register_renamed(self, job: Job) -> None:
        """:meth:`register` when the name is taken: by an earlier job, or by a file of that name."""
        counter_len = int(self.settings.get("counter_len", 3))
        with self._lock:
            base = job.name
            parent_folder = job.parent.path if job.parent is not None and job.parent.path else self.workdir

            def taken(name: str) -> bool:
                # A file of that name (the logfile, the copy of a script) clashes as a job does;
                # a folder does not: a restart in place reuses the job folders it finds.
                path = os.path.join(parent_folder, name)
                return name in self.names or (os.path.lexists(path) and not os.path.isdir(path))

            if taken(base):
                number = self.names.get(base, 1)
                while True:
                    number += 1
                    candidate = f"{base}.{number:0{counter_len}d}"
                    if not taken(candidate):
                        break
                self.names[base] = number
                self.names[candidate] = 1
                log(f"Renaming job {base} to {candidate}", 3)
            else:
                self.names[base] = 1
                candidate = base
            job.assign_name(candidate)  # the runscript is hashed under the name asked for
            job.path = os.path.join(parent_folder, job.name)
            job.jobmanager = self
            self.jobs.append(job)
        try:
            os.mkdir(job.path)
        except FileExistsError:
            pass  # e.g. a restart into a folder that already holds this job: files are replaced
        else:
            with self._lock:
                self._made.add(job.path)

    def made_folder(self, path: str) -> bool:
        """Whether this manager made the folder ``path`` in this run (a new folder: no other job's)."""
        return path in self._made

    def withdraw(self, job: Job) -> None:
        """``job`` was cancelled before it started: keep it counted, remove the folder it made."""
        with self._lock:
            if job not in self.jobs:
                self.not_started.append(job)
            made = job.path is not None and job.path in self._made
            if made:
                self._made.discard(job.path)
            self._deferred.pop(job.path or "", None)
        if made and job.path is not None:
            shutil.rmtree(job.path, ignore_errors=True)

    # --- rerun prevention ------------------------------------------------------------
    def check_hash(self, job: Job) -> Job | None:
        """Return an earlier successful job identical to ``job``, or ``None`` to run it.

        A duplicate of a job still running waits for it. Only a successful (or copied)
        job is reused; after a crashed or failed one the new job runs and takes its place.
        """
        digest = job.hash()
        job._hash = digest
        if digest is None:
            self._evict_loaded(job, None)
            return None
        while True:
            with self._lock:
                prev = self.hashes.get(digest)
                if prev is None or prev is job:
                    self.hashes[digest] = job
                    found = None
                    break
                saved = isinstance(prev, SavedJob)  # (ended: no results object to make and ask)
                if saved or prev.results.is_done():
                    reusable = prev.status in _REUSABLE
                    if reusable and prev.path and (prev.check_folder() if saved  # type: ignore[attr-defined]
                                                   else os.path.isdir(prev.path)):
                        found = prev
                        break
                    self.hashes[digest] = job
                    found = None
                    break
            log(f"Job {job.name} is identical to {prev.name}, which is still running: waiting for it", 5)
            prev.results.wait()
        self._evict_loaded(job, found)
        return found

    def _evict_loaded(self, job: Job, reused: Job | None) -> None:
        """``job`` takes the folder of a job loaded from it (a restart in place): unless that
        very job is reused, the loaded one is forgotten, and its saved files deleted, before
        its files are overwritten; a later duplicate must never reuse what is no longer there."""
        if not self._loaded_paths or job.path is None or job.path in self._deferred:
            return  # (a deferred folder is in NAME, the jobs loaded in a restart in NAME.res)
        key = normal_path(job.path)
        with self._lock:
            loaded = self._loaded_paths.get(key)
            if loaded is None or loaded is reused or loaded is job:
                return
            del self._loaded_paths[key]
            digest = getattr(loaded, "_hash", None)
            if digest is not None and self.hashes.get(digest) is loaded:
                del self.hashes[digest]
        log(f"Job {job.name} replaces the job loaded from {job.path}", 3)
        for suffix in (".dill", ".job.json"):
            try:
                os.unlink(os.path.join(job.path, loaded.name + suffix))
            except FileNotFoundError:
                pass

    def claim_hash(self, job: Job) -> None:
        """Make ``job`` the one its hash finds (reusing the files of the job found failed)."""
        with self._lock:
            if job._hash is not None:
                self.hashes[job._hash] = job

    def _add_loaded(self, job: Job) -> None:
        """Make a loaded job (and its children) known for rerun prevention, without registering it."""
        from plams_cli.core.multijob import MultiJob  # jobs import this module

        with self._lock:
            for item in job.walk() if isinstance(job, MultiJob) else (job,):
                if item.path:
                    self._loaded_paths[normal_path(item.path)] = item
                digest = getattr(item, "_hash", None)
                if digest and item.status in (JobStatus.SUCCESSFUL, JobStatus.COPIED):
                    current = self.hashes.get(digest)
                    if current is None or not current.results.is_done() or not current.ok():
                        self.hashes.setdefault(digest, item)

    def add_saved(self, *jobs: Job | SavedJob) -> None:
        """Make jobs known from a working folder's index (:class:`SavedJob`) take part in rerun prevention.

        As a loaded job (:meth:`_add_loaded`, for a job without children): it is not
        registered, and its hash finds it unless another job holds that hash already.
        """
        reusable = _REUSABLE
        with self._lock:
            paths, hashes = self._loaded_paths, self.hashes
            for job in jobs:
                if job.path:
                    paths[normal_path(job.path)] = job  # type: ignore[assignment]
                if job._hash and job.status in reusable:
                    hashes.setdefault(job._hash, job)  # type: ignore[arg-type]

    @property
    def restart_source(self) -> tuple[str, str] | None:
        """``(NAME, NAME.res)`` of a restart in place: jobs loaded from ``NAME.res`` may move into ``NAME``.

        Set by the session; the paths are normalized once here, not per job moved.
        """
        return self._restart_source

    @restart_source.setter
    def restart_source(self, value: tuple[str, str] | None) -> None:
        self._restart_source = None if value is None else (normal_path(value[0]), normal_path(value[1]))

    def move_loaded(self, job: Job, prev: Job) -> bool:
        """Give ``job`` the folder of ``prev`` with one rename, when ``prev`` was loaded from the folder being
        restarted and its folder belongs where ``job``'s is (same name, same place); say whether it moved.

        The folder moves whole, ``prev``'s saved files with it until ``job`` is saved over
        them; its hidden files (left by a killed write, or a batch job's records) are
        ``job``'s to delete as it lists its files (``results.collect(drop_hidden=True)``),
        as a copy would leave them out. ``prev`` then lives in ``job``'s folder. Call it
        holding :attr:`folder_lock`.
        """
        source = self.restart_source
        if source is None or prev.path is None or job.path is None or prev.name != job.name:
            return False
        path = normal_path(prev.path)
        with self._lock:
            if self._loaded_paths.get(path) is not prev:
                return False
        twin: object = self._deferred.get(job.path)
        if twin is prev:  # register() found it belongs in job's folder, and made none: no place to check
            try:
                os.rename(path, job.path)
            except OSError:
                return False
            del self._deferred[job.path]
        else:
            from plams_cli.core.restart import move_job_folder

            if not move_job_folder(path, normal_path(job.path), *source, normal=True):
                return False
        prev.path = job.path
        if isinstance(prev, SavedJob):
            prev.moved_whole = True
        return True

    def load_job(self, filename: str) -> Job:
        """Load a saved job from ``filename`` and add its hashes to this manager's registry."""
        job = read_job(filename)
        job.jobmanager = self
        self._add_loaded(job)
        return job

    def remove_job(self, job: Job) -> None:
        """Forget ``job`` (and a MultiJob's children) and delete its folder; its status becomes ``deleted``."""
        from plams_cli.core.jobs import MultiJob

        if isinstance(job, MultiJob):
            for child in list(job):
                self.remove_job(child)
        with self._lock:
            if job in self.jobs:
                self.jobs.remove(job)
            if job._hash is not None and self.hashes.get(job._hash) is job:
                del self.hashes[job._hash]
        if job.path and os.path.isdir(job.path):
            shutil.rmtree(job.path)
        job.status = JobStatus.DELETED

    # --- tracking running jobs -------------------------------------------------------
    def track(self, job: Job) -> None:
        """``job`` started: :meth:`wait_all` waits for it until :meth:`job_ended`."""
        with self._lock:
            self._active[id(job)] = job

    def job_ended(self, job: Job) -> None:
        """``job`` ended (whatever its status): :meth:`wait_all` no longer waits for it."""
        with self._lock:
            self._active.pop(id(job), None)
            if not self._active and self._waiters:
                self._all_done.notify_all()

    def wait_all(self) -> None:
        """Block until every job started in this manager has ended."""
        with waiting():
            with self._lock:
                self._waiters += 1
                try:
                    while self._active:
                        self._all_done.wait()
                finally:
                    self._waiters -= 1

    def status_counts(self) -> dict[str, int]:
        """How many jobs of this manager are in each status (for progress displays).

        Jobs started but not registered yet (waiting for their dependencies or a thread)
        count as ``started``; crashed jobs that never started (the run was cancelled first,
        see :attr:`Job.not_started`) as ``not started``.
        """
        counts: dict[str, int] = {}
        with self._lock:
            seen = {id(job) for job in self.jobs}
            jobs = [*self.jobs, *(job for key, job in self._active.items() if key not in seen), *self.not_started]
            values = STATUS_VALUES  # (a dict, not the enum's value property: once per job of the run)
            for job in jobs:
                key = "not started" if job.not_started else values[job.status]
                counts[key] = counts.get(key, 0) + 1
        return counts

    # --- clean-up --------------------------------------------------------------------
    def clean(self) -> None:
        """Apply each job's ``save`` setting and remove empty folders if configured (``finish()`` calls it)."""
        for job in list(self.jobs):
            if job.status in _REUSABLE and job.path:
                save = job.settings.get("save", "all")
                if save not in (None, "all") and os.path.isdir(job.path):  # the setting first: no stat per job
                    try:
                        job.results.clean(save)
                    except (OSError, PlamsError) as exc:
                        log(f"Cleaning {job.name} failed: {exc}", 1)
        if self.settings.get("remove_empty_directories", True):
            holding: set[str] = set()
            plain: set[str] = set()  # a reused job's folder as its index entry saw it: no subfolders
            with self._lock:  # (one pass: finish() runs it over every job of the run)
                for job in self.jobs:
                    path = job.path
                    if path and _lists_top_level_file(job):
                        holding.add(path)
                        if job.results.listed:  # (see SavedJob.check_folder)
                            plain.add(path)
            _remove_empty_folders(self.workdir, holding, plain)

    _clean = clean  # PLAMS's name
