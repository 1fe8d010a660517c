"""``Job``: the base of every job — a name, settings, a status, results and PLAMS's hooks.

A job does not drive itself: ``run()`` hands it to :mod:`plams_cli.core.lifecycle`,
which takes it through its states and calls the job's hooks on the way — PLAMS's
``prerun()``, ``check()``, ``postrun()``, ``hash()``, and the few public steps a kind of
job defines (:meth:`Job.write_files`, :meth:`Job.runscript_call`, :meth:`Job.execute`).
:class:`~plams_cli.core.singlejob.SingleJob` and :class:`~plams_cli.core.multijob.MultiJob`
are the two kinds; :mod:`plams_cli.core.jobs` gathers them.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Container, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from plams_cli.core import lifecycle
from plams_cli.core import runtime as _config_module
from plams_cli.core._files import link_listed, link_or_copy_tree
from plams_cli.core.jobindex import SavedJob
from plams_cli.core.logger import hold_lines, log, release_lines
from plams_cli.core.observers import announce_status
from plams_cli.core.pickling import save_job
from plams_cli.core.results import Results
from plams_cli.core.settings import Settings
from plams_cli.core.status import STATUS_VALUES, JobStatus
from plams_cli.errors import JobError

if TYPE_CHECKING:
    from plams_cli.core.multijob import MultiJob

__all__ = ["Job"]

# (reading an enum member off its class costs a few lookups in Python 3.11: every job reads these)
_CREATED, _STARTED = JobStatus.CREATED, JobStatus.STARTED

_UNPICKLED_SET = frozenset(("jobmanager", "jobrunner", "parent", "default_settings", "_lock", "_input_text",
                            "_runscript_text", "_runner", "_notified", "_made_folder", "_reused_in_place"))


def _same_folder(one: str, other: str) -> bool:
    """Whether the paths ``one`` and ``other`` name the same folder (through symbolic links too)."""
    if one == other:
        return True
    try:
        return os.path.samefile(one, other)
    except OSError:
        return os.path.realpath(one) == os.path.realpath(other)


def _validate_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise JobError(f"a job name must be a non-empty string, not {name!r}")
    if "/" in name or os.sep in name or name in (".", ".."):
        raise JobError(f"job name {name!r} is not allowed: it names a folder, so it must not contain '/' "
                       "nor be '.' or '..'")
    return name


def _renamer(old: str, new: str, skip: Container[str]) -> Callable[[str], str | None]:
    """How :meth:`Job.reuse_files` names the files of job ``old`` for job ``new``: ``None`` leaves one out."""

    def rename(relative: str) -> str | None:
        if relative in skip or os.path.basename(relative).startswith("."):
            return None
        if relative.startswith(old + ".") and os.sep not in relative:
            return new + relative[len(old):]
        return relative

    return rename


class Job:
    """Base of every job: a name, settings, a status and results.

    Parameters
    ----------
    name
        The job's name; its folder and files are named after it. Must not contain ``/``.
        A clash with an earlier job of the same run is renamed ``name.002``, ….
    settings
        A :class:`Settings` (copied) or another job, whose settings are copied.
    depend
        Jobs that must end before this one starts.
    """

    __module__ = "plams_cli.core.jobs"  # its public home: saved jobs and summaries name it there

    _result_type: type[Results] = Results
    #: in preview mode, whether the job still executes (a MultiJob runs its children, which preview)
    runs_in_preview: ClassVar[bool] = False

    def __init__(self, name: str = "plamsjob", settings: Settings | Job | None = None,
                 depend: list[Job] | None = None) -> None:
        self.name = _validate_name(name)
        self.path: str | None = None
        self.jobmanager: Any = None
        self.jobrunner: Any = None
        self.parent: MultiJob | None = None
        if settings is None:
            self.settings = Settings.__new__(Settings)  # empty: nothing for __init__ to convert
        elif isinstance(settings, Settings):
            self.settings = settings.copy()
        elif isinstance(settings, Job):
            self.settings = settings.settings.copy()
        elif isinstance(settings, Mapping):
            self.settings = Settings(settings).copy()
        else:
            raise JobError(f"settings of job {name} must be a Settings, a dict or a Job, not {type(settings).__name__}")
        self.default_settings: list[Settings] = [_config_module.config.job]
        self.depend: list[Job] = list(depend or [])
        self._dont_pickle: list[str] = []
        self._error_msg: str | None = None
        self._hash: str | None = None
        self._lock = threading.RLock()
        self.timestamps: dict[str, float] = {}
        self._requested_name: str = self.name  # the name before a clash renamed it
        self._status = _CREATED
        self.results = self._result_type(self)

    # --- status ----------------------------------------------------------------------
    @property
    def status(self) -> JobStatus:
        """The job's :class:`JobStatus`; setting it records the time and announces the change.

        Announced through :mod:`plams_cli.core.observers`, whose subscribers log it,
        count it and record it in the job cache.
        """
        return self._status

    @status.setter
    def status(self, value: JobStatus | str) -> None:
        status = value if type(value) is JobStatus else JobStatus(value)
        old, self._status = self._status, status
        now = self.timestamps[STATUS_VALUES[status]] = time.time()
        announce_status(self, old, status, now)  # the log line, the live count, the job cache …

    @property
    def not_started(self) -> bool:
        """Whether the job was cancelled before its runscript started (it is ``crashed``, with no folder)."""
        return bool(getattr(self, "_never_started", False))

    @not_started.setter
    def not_started(self, value: bool) -> None:
        self._never_started = bool(value)

    def full_name(self) -> str:
        """The job's name with its parents', ``outer/inner/name``."""
        return f"{self.parent.full_name()}/{self.name}" if self.parent is not None else self.name

    _full_name = full_name  # PLAMS's name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self._status.value}>"

    # --- the public life-cycle API ---------------------------------------------------
    def run(self, jobrunner: Any = None, jobmanager: Any = None, **kwargs: Any) -> Results:
        """Run the job and return its :class:`Results`.

        Parameters
        ----------
        jobrunner
            Where to run (default ``config.default_jobrunner``). A parallel runner
            returns at once; reading the results then waits for the job.
        jobmanager
            Which working folder (default ``config.default_jobmanager``; ``init()`` is
            called when there is none yet).
        **kwargs
            Run flags, merged into ``settings.run`` (a grid runner turns them into
            submit options).

        Raises
        ------
        JobError
            The job was run before.
        """
        held = hold_lines()  # this step's log lines in one write (see plams_cli.core.logger)
        try:
            with self._lock:
                if self._status != _CREATED:
                    raise JobError(
                        f"job {self.name} was already run (status {self._status.value}); "
                        "create a new job to run it again"
                    )
                self.status = _STARTED
            if kwargs:
                self.settings.run.soft_update(Settings(kwargs))
            lifecycle.start(self, jobrunner, jobmanager)
        finally:
            release_lines(held)
        return self.results

    def ok(self, strict: bool = True) -> bool:
        """Wait for the job, then say whether it ended well (successful or copied).

        With ``strict=False`` a finished job whose ``check()`` failed counts as well.
        """
        if self._status == JobStatus.CREATED:
            log(f"WARNING: ok() of job {self.name}, which was never run: False", 3)
            return False
        self.results.wait()
        good = {JobStatus.SUCCESSFUL, JobStatus.COPIED}
        if not strict:
            good |= {JobStatus.FAILED, JobStatus.FINISHED}
        return self._status in good

    def check(self) -> bool:
        """Whether the job's results are correct; override to check outputs. Default: True."""
        return True

    def get_errormsg(self) -> str | None:
        """Why the job crashed or failed (exit code, exception, …), or ``None`` if it did not."""
        if self._error_msg:
            return self._error_msg
        if self._status == JobStatus.FAILED:
            return f"job {self.name} failed: its check() returned False"
        return None

    def record_error(self, message: str) -> None:
        """Keep ``message`` as why the job crashed, unless a reason was kept already (the first wins)."""
        if self._error_msg is None:
            self._error_msg = message

    def prerun(self) -> None:
        """Hook run before the job's input is written (after registration). Default: nothing."""

    def postrun(self) -> None:
        """Hook run after a successful ``check()``, before the job is saved. Default: nothing."""

    def hash(self) -> str | None:
        """The job's rerun-prevention hash, or ``None`` when it is not hashed."""
        return None

    @property
    def registered_hash(self) -> str | None:
        """The hash recorded when the job was registered (``hash()`` then), or ``None``.

        ``None``: not registered yet, or not hashed. A loaded job keeps the hash it was
        saved with, which is what a restart compares.
        """
        return getattr(self, "_hash", None)

    # --- steps the life cycle calls (see plams_cli.core.lifecycle) ------------------
    def assign_name(self, name: str) -> None:
        """Take ``name``, given by the job manager when registering (``calc.002`` after a clash).

        The name asked for is kept: the runscript is hashed under it (see
        :meth:`~plams_cli.core.singlejob.SingleJob.hash_runscript`).
        """
        self._requested_name = self.name
        self.name = name

    def write_files(self) -> None:
        """Write what the job needs before it executes (input, runscript …). Default: nothing."""

    def runscript_call(self) -> dict[str, Any] | None:
        """The arguments of ``runner.call()`` that run this job, or ``None`` for a job without a runscript.

        A job without one (a :class:`~plams_cli.core.multijob.MultiJob`) runs through
        :meth:`execute` instead.
        """
        return None

    def record_exit(self, code: int) -> None:
        """Take the runscript's exit code; a code other than 0 crashes the job. Default: nothing."""

    def execute(self, jobrunner: Any) -> bool:
        """Execute a job without a runscript; True when it is to be finalized at once.

        Raises
        ------
        NotImplementedError
            Always, here: a kind of job defines either :meth:`runscript_call` or this.
        """
        raise NotImplementedError(f"{type(self).__name__} defines neither runscript_call() nor execute()")

    def reuse_files(self, prev: Job) -> bool:
        """Take the files of ``prev``, an identical job that ended well, as this job's own.

        Files named after ``prev`` are renamed after this job; saved jobs and hidden files
        are left out (but for ``prev``'s own ``.dill`` and ``.job.json`` when it is a job of
        the same name known from an index, :class:`~plams_cli.core.jobindex.SavedJob`:
        linked, they are this job's saved state, see :func:`~plams_cli.core.pickling.keep_saved`).
        They are hard links unless ``settings.link_files`` is false. In a
        restart, ``prev``'s folder becomes this job's with one rename when it belongs in the
        same place; then True is returned: its hidden files are still there, for
        ``results.collect(drop_hidden=True)`` to delete. When ``prev``'s folder is as its
        index entry saw it (:meth:`SavedJob.check_folder
        <plams_cli.core.jobindex.SavedJob.check_folder>`), this job's :attr:`results` get
        the entry's file list here (see :meth:`Results.collect
        <plams_cli.core.results.Results.collect>`).
        """
        old, new = prev.name, self.name
        pickles, links = self.settings.get("pickle", True), self.settings.get("link_files", True)
        keeps = old == new and isinstance(prev, SavedJob) and self.saves_plainly() and pickles and links
        listed = prev.listed_files() if keeps else None  # type: ignore[attr-defined]
        # with keeps: links of the saved files the index vouched for, kept as they are (see keep_saved)
        skip = () if keeps else (f"{old}.dill", f"{old}.job.json")
        assert self.path is not None and prev.path is not None
        manager = self.jobmanager
        # Only a restart moves loaded folders: then no job may link from one while it moves.
        moving = getattr(manager, "restart_source", None) is not None
        moved = False
        with manager.folder_lock if moving else contextlib.nullcontext():
            source = prev.path
            if moving and manager.move_loaded(self, prev):
                moved = True
                # prev's folder (a restart's) is this job's now, saved files too until this job's replace them
                if not pickles:
                    for name in skip:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(os.path.join(self.path, name))
            elif moving and manager.make_folder(self):  # (the folder register() left to the rename)
                listed = self._link_files(source, listed, _renamer(old, new, skip), bool(links))
            elif source == self.path or (not manager.made_folder(self.path) and _same_folder(source, self.path)):
                listed = None  # (a job loaded from this very folder already has its files here)
            else:
                listed = self._link_files(source, listed, _renamer(old, new, skip), bool(links))
        if listed is not None:
            self.results.take_listed(listed)
        self._copied_from = source
        self._exit_code = getattr(prev, "_exit_code", 0)
        return moved

    def _link_files(self, source: str, listed: list[str] | None, rename: Callable[[str], str | None],
                    link: bool) -> list[str] | None:
        """Link (or copy) the files of ``source`` into this job's folder; the file list, when it was ``listed``."""
        assert self.path is not None
        if listed is not None and link_listed(source, self.path, listed):
            return listed
        link_or_copy_tree(source, self.path, rename, link=link)
        return None

    # --- pickling --------------------------------------------------------------------
    def saves_plainly(self) -> bool:
        """Whether this job saves itself as every job does (its class does not override :meth:`pickle`)."""
        return type(self).pickle is Job.pickle

    def pickle(self, filename: str | None = None) -> None:
        """Save the job as ``<path>/<name>.dill`` (atomically), with a JSON summary beside it."""
        save_job(self, filename)

    def __getstate__(self) -> dict[str, Any]:
        remove = _UNPICKLED_SET.union(self._dont_pickle) if self._dont_pickle else _UNPICKLED_SET
        return {k: v for k, v in self.__dict__.items() if k not in remove}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.jobmanager = None
        self.jobrunner = None
        self.parent = None
        self.default_settings = [_config_module.config.job]
        self._lock = threading.RLock()
        if getattr(self, "results", None) is not None:
            self.results.job = self
