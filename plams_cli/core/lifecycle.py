"""The job life cycle: one place drives every job through its states, and announces them.

Control goes one way: ``Job.run()`` calls :func:`start`, which hands the life cycle
(:func:`drive`) to the runner (``runner.submit``: inline when serial, in a thread when
parallel). :func:`drive` then takes the job through its steps:

1. wait for ``depend``; refuse the job if the runner was cancelled (it ends "not started");
2. register it with the job manager (unique name, folder) — ``registered``;
3. ``prerun()``, then merge the default settings;
4. ask the job manager for an identical job that ended well (the hash); if there is one,
   take its files (:meth:`Job.reuse_files`), save the job and end it ``copied``;
5. write its files (:meth:`Job.write_files`);
6. run it: a job with a runscript through the runner (``runner.slot()`` for a turn under
   ``maxjobs``, then ``runner.call()`` — ``running``), a MultiJob through its children
   (:meth:`MultiJob.execute`, which ends later, with its last child);
7. :func:`finalize`: collect the files, ``check()``, clean, ``postrun()``, save — ending
   ``successful``, ``failed`` or ``crashed``;
8. :func:`end`: release whoever waits, tell the job manager and the parent.

Any exception on the way crashes the job (:func:`crash`) with the exception as its error
message; waiters are always released. A runner needs only ``call()`` (PLAMS's kind); a
:class:`~plams_cli.runners.local.JobRunner` also offers ``submit``, ``slot`` and
``cancelled``.

Announcements go through the observer seam (:mod:`plams_cli.core.observers`, whose
names this module re-exports): every status change, and every runscript a runner starts.
"""

from __future__ import annotations

import contextlib
import functools
import os
import traceback
from typing import TYPE_CHECKING, Any

from plams_cli.core import runtime
from plams_cli.core.jobindex import SavedJob
from plams_cli.core.logger import hold_lines, log, release_lines, write_held
from plams_cli.core.logger import threshold as logger_threshold
from plams_cli.core.observers import STATUS_LOG_LEVEL as STATUS_LOG_LEVEL
from plams_cli.core.observers import LifecycleObserver as LifecycleObserver
from plams_cli.core.observers import StatusLog as StatusLog
from plams_cli.core.observers import StatusTally as StatusTally
from plams_cli.core.observers import announce_launch as announce_launch
from plams_cli.core.observers import announce_status as announce_status
from plams_cli.core.observers import observers as observers
from plams_cli.core.observers import observing as observing
from plams_cli.core.observers import subscribe as subscribe
from plams_cli.core.observers import unsubscribe as unsubscribe
from plams_cli.core.pickling import keep_saved, write_summary
from plams_cli.core.status import JobStatus
from plams_cli.errors import NotStartedError, PlamsError
from plams_cli.runners.launch import launch_reports_to
from plams_cli.runners.local import JobRunner

if TYPE_CHECKING:
    from plams_cli.core.job import Job
    from plams_cli.core.jobmanager import JobManager

__all__ = ["start", "drive", "finalize", "crash", "end",
           "LifecycleObserver", "StatusLog", "StatusTally", "announce_launch", "announce_status", "subscribe",
           "unsubscribe", "observing", "observers", "STATUS_LOG_LEVEL"]


# (reading an enum member off its class costs a few lookups in Python 3.11: every job reads these)
_REGISTERED, _COPIED = JobStatus.REGISTERED, JobStatus.COPIED


def start(job: Job, jobrunner: Any = None, jobmanager: JobManager | None = None) -> None:
    """Hand ``job`` (just ``started``) to its runner, which drives it (:func:`drive`).

    Parameters
    ----------
    job
        The job; ``Job.run()`` has checked it was not run before.
    jobrunner
        Where to run (default ``config.default_jobrunner``).
    jobmanager
        Which working folder (default ``config.default_jobmanager``; ``init()`` is called
        when no run is going on).
    """
    config = runtime.config
    runner = jobrunner or config["default_jobrunner"]  # (items, as config.x reads them, without its rules)
    manager = jobmanager
    if manager is None:
        manager = config["default_jobmanager"]
        if manager is None or not config.get("init"):
            manager = runtime.init()
    job.jobrunner = runner
    job.jobmanager = manager
    manager.track(job)
    submit = getattr(runner, "submit", None)
    if submit is None or (type(runner).submit is _SERIAL_SUBMIT and not runner.parallel):
        # a runner of PLAMS's kind, with call() only, or a serial JobRunner (whose submit() does just this): here
        drive(job, runner, manager)
    else:
        submit(functools.partial(drive, job, runner, manager), name=f"plams-{job.name}",
               daemon=bool(config.get("daemon_threads", True)))


_SERIAL_SUBMIT = JobRunner.submit


def drive(job: Job, jobrunner: Any, jobmanager: JobManager) -> None:
    """Take ``job`` through its life cycle (see the module's description), in the calling thread.

    An exception crashes the job; ``KeyboardInterrupt`` and ``SystemExit`` are raised again.
    The log lines of each step go out together (see :func:`~plams_cli.core.logger.hold_lines`),
    before anything that may take long: a wait, a runscript, the job's own ``prerun()`` or
    ``postrun()``.
    """
    held = hold_lines()
    try:
        if _prepare(job, jobrunner, jobmanager):
            if runtime.config.preview and not job.runs_in_preview:
                finalize(job)
            elif _execute(job, jobrunner):
                finalize(job)
    except BaseException as exc:
        crash(job, exc)
        if not isinstance(exc, Exception):
            raise
    finally:
        release_lines(held)


def _own(job: Job, method: str) -> bool:
    """Whether ``job``'s class has its own ``method`` (user code, which may take long), not the base no-op."""
    if not _BASE:
        from plams_cli.core.job import Job

        _BASE.append(Job)
    return getattr(type(job), method) is not getattr(_BASE[0], method)


_BASE: list[type[Job]] = []


def _prepare(job: Job, jobrunner: Any, jobmanager: JobManager) -> bool:
    """Steps 1-5: True when the job is to run, False when it ended already (copied)."""
    if job.depend and not runtime.config.preview:
        write_held()
        for dependency in job.depend:
            dependency.results.wait()
    if getattr(jobrunner, "cancelled", False):  # no folder for a job that will not run
        raise NotStartedError()
    own_prerun = _own(job, "prerun")
    # (without a prerun() of its own, nothing uses the folder of a job being reused by a restart)
    jobmanager.register(job, defer_folder=not own_prerun)
    # As in PLAMS: registered (name, folder) before prerun(), so prerun() and the
    # get_input() the hash calls see the status, folder and merged defaults PLAMS gives them.
    job.status = _REGISTERED
    if logger_threshold() >= 5:
        log(f"Starting {job.name}.prerun()", 5)
    if own_prerun:
        write_held()
    job.prerun()
    for defaults in reversed(job.default_settings):
        job.settings.soft_update(defaults)
    try:
        prev = jobmanager.check_hash(job)
    except OSError:
        # a get_input() that writes into the folder register() left out: it is made, the hash asked again
        if not jobmanager.make_folder(job):
            raise
        prev = jobmanager.check_hash(job)
    if prev is not None:
        try:
            _reuse(job, prev)
        except OSError as exc:
            log(f"Reusing the files of {prev.name} for {job.name} failed ({exc}); running it", 1)
            jobmanager.claim_hash(job)
        else:
            return False
    jobmanager.make_folder(job)
    job.write_files()
    return True


def _reuse(job: Job, prev: Job) -> None:
    """End ``job`` ``copied`` with the files of ``prev``."""
    moved = job.reuse_files(prev)
    if moved and isinstance(prev, SavedJob):
        # (the job cache holds the row of that folder from the run that saved prev: see cache_recorder)
        job._reused_in_place = True  # type: ignore[attr-defined]
    if not job.results.listed:  # (else its files are known from the index: see Job.reuse_files)
        # a folder moved in whole may hold a killed write's temporary files
        job.results.collect(drop_hidden=bool(moved))
    job.status = _COPIED
    job.results.mark_collected()
    if job.settings.get("pickle", True):
        # prev's saved files came along (its folder moved in whole, or hard links): kept as they
        # are when they are still the files the index vouched for (see keep_saved).
        if not (isinstance(prev, SavedJob) and job.saves_plainly() and keep_saved(job, prev)):
            job.pickle()
    end(job)


def _execute(job: Job, jobrunner: Any) -> bool:
    """Step 6: True when the job is to be finalized now (a MultiJob finalizes with its last child)."""
    arguments = job.runscript_call()
    if arguments is None:
        write_held()
        return job.execute(jobrunner)
    try:
        code = _call(job, jobrunner, arguments)
    except NotStartedError:
        raise  # the run was cancelled while the job waited for its turn: see _withdraw
    except PlamsError as exc:
        job.record_error(str(exc))
        job.status = JobStatus.CRASHED
        return True
    job.record_exit(code)
    return True


def _call(job: Job, jobrunner: Any, arguments: dict[str, Any]) -> int:
    """Run the job's runscript: ``running`` once the runner gives it a turn; its start is announced."""
    slot = getattr(jobrunner, "slot", None)
    if slot is None:  # a runner of PLAMS's kind, with call() only
        job.status = JobStatus.RUNNING
        write_held()
        return int(jobrunner.call(**arguments))
    write_held()
    with slot():
        job.status = JobStatus.RUNNING
        write_held()
        with launch_reports_to(functools.partial(announce_launch, job)):
            return int(jobrunner.call(**arguments))


def finalize(job: Job) -> None:
    """Step 7: collect the files, ``check()``, clean, ``postrun()``, save; then :func:`end`.

    In preview mode the job ends ``preview`` instead. A job that crashed while it ran
    gets its error logged and a summary file.
    """
    if runtime.config.preview:
        job.status = JobStatus.PREVIEW
        job.results.mark_collected()
        end(job)
        return
    job.results.collect()
    job.results.mark_collected()
    if job.status != JobStatus.CRASHED:
        job.status = JobStatus.FINISHED
        if job.check():
            job.results.clean(job.settings.get("keep", "all"))
            if logger_threshold() >= 5:
                log(f"Starting {job.name}.postrun()", 5)
            if _own(job, "postrun"):
                write_held()
            job.postrun()
            job.status = JobStatus.SUCCESSFUL
            if job.settings.get("pickle", True):
                job.pickle()
        else:
            job.status = JobStatus.FAILED
            _write_summary(job)
    else:
        _log_error(job)
        _write_summary(job)
    end(job)


def crash(job: Job, exc: BaseException) -> None:
    """``job`` met ``exc``: end it ``crashed``, with the exception as its reason.

    A job refused before its runscript started (:class:`~plams_cli.errors.NotStartedError`)
    is withdrawn instead (``crashed``, counted as not started, no folder). A job that
    ended already is left as it is. Whatever happens, nobody is left waiting for it.
    """
    if isinstance(exc, NotStartedError):
        _withdraw(job, str(exc))
        return
    job.record_error(_reason(exc))
    if job.status.is_final and job.results.is_done():
        return
    try:
        job.status = JobStatus.CRASHED
        _log_error(job)
        if job.path and os.path.isdir(job.path):
            with contextlib.suppress(OSError):
                job.results.collect()
            _write_summary(job)
    finally:  # whatever happens, nobody may be left waiting for this job
        job.results.mark_collected()
        end(job)


def _reason(exc: BaseException) -> str:
    """The error message of a job crashed by ``exc``: where a bug was raised, which signal interrupted."""
    if isinstance(exc, PlamsError):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):  # the plams command names the signal: KeyboardInterrupt("SIGTERM")
        return f"interrupted ({str(exc) or 'Ctrl-C'})"
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno}, in {frames[-1].name})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _withdraw(job: Job, message: str) -> None:
    """The job was refused before its runscript started: ``crashed`` and counted as not started, no folder.

    The status is PLAMS's ``crashed`` (the job did not run; ``ok()`` is False); summaries
    count it as ``not started`` (see :attr:`Job.not_started`). A folder the job made for
    itself is removed (it holds only its input, runscript and what ``prerun()`` wrote);
    no summary file is written, so a restart simply runs the job.
    """
    job.record_error(message)
    job.not_started = True
    try:
        job.status = JobStatus.CRASHED
        _log_error(job)
        if job.jobmanager is not None:
            job.jobmanager.withdraw(job)
    finally:
        job.results.mark_collected()
        end(job)


def end(job: Job) -> None:
    """Step 8: wake everyone waiting for ``job``, then tell its job manager and its parent."""
    job.results.mark_done()
    if job.jobmanager is not None:
        job.jobmanager.job_ended(job)
    parent = job.parent
    if parent is not None:
        parent.child_ended(job)


def _log_error(job: Job) -> None:
    log(f"Error message for job {job.full_name()} was:\n{job.get_errormsg()}", 1)


def _write_summary(job: Job) -> None:
    try:
        write_summary(job)
    except Exception as exc:  # noqa: BLE001 - a summary is a convenience; never fail a job for it
        log(f"Could not write the summary of {job.name}: {type(exc).__name__}: {exc}", 1)
