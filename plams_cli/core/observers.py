"""The observer seam of the job life cycle: announcements of status changes and runscript starts.

Every status change of every job goes through :func:`announce_status` (the ``Job.status``
setter calls it), and every runscript a runner starts — a local process, a batch job, a
batch job's move from queued to running — through :func:`announce_launch`. Whoever wants
to follow jobs subscribes a :class:`LifecycleObserver`: the log lines of status changes
(:class:`StatusLog`, always subscribed), the live count of ``plams`` (:class:`StatusTally`)
and the job cache's recorder (:mod:`plams_cli.core.cache_recorder`).

Guarantees: an observer sees each change once, in the order it happened for that job,
in the thread that made it (so observers must be quick and thread-safe); observers are
called in the order they subscribed; an observer that raises is reported once on the
log and never fails the job.

The life cycle itself (:mod:`plams_cli.core.lifecycle`) re-exports these names; this
module sits below the run's configuration, so the job cache's recorder can subscribe
without importing what drives jobs.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from plams_cli.core.logger import log
from plams_cli.core.logger import threshold as logger_threshold
from plams_cli.core.status import STATUS_VALUES, JobStatus
from plams_cli.runners.launch import Launch

if TYPE_CHECKING:
    from plams_cli.core.jobs import Job

__all__ = ["LifecycleObserver", "StatusLog", "StatusTally", "announce_launch", "announce_status", "subscribe",
           "unsubscribe", "observing", "observers"]


class LifecycleObserver(Protocol):
    """What a subscriber of the job life cycle implements."""

    def status_changed(self, job: Job, old: JobStatus, new: JobStatus, when: float) -> None:
        """``job`` went from ``old`` to ``new`` at ``when`` (``time.time()``)."""

    def job_launched(self, job: Job, launch: Launch) -> None:
        """A runner started ``job``'s runscript, or its batch job changed state in the queue."""


_lock = threading.Lock()
_observers: tuple[LifecycleObserver, ...] = ()
_failed: set[int] = set()  # ids of observers whose failure was reported already


def subscribe(observer: LifecycleObserver) -> None:
    """Add ``observer``; it sees every change from now on (once, even if subscribed twice)."""
    global _observers
    with _lock:
        if observer not in _observers:
            _observers = (*_observers, observer)


def unsubscribe(observer: LifecycleObserver) -> None:
    """Remove ``observer``; unknown observers are ignored."""
    global _observers
    with _lock:
        _observers = tuple(o for o in _observers if o is not observer)


@contextlib.contextmanager
def observing(observer: LifecycleObserver) -> Iterator[LifecycleObserver]:
    """Subscribe ``observer`` for the duration of the block."""
    subscribe(observer)
    try:
        yield observer
    finally:
        unsubscribe(observer)


def observers() -> tuple[LifecycleObserver, ...]:
    """The subscribed observers, in the order they are called."""
    return _observers


def _report(observer: LifecycleObserver, exc: Exception) -> None:
    if id(observer) not in _failed:
        _failed.add(id(observer))
        log(f"WARNING: {type(observer).__name__} failed and missed a job change: {type(exc).__name__}: {exc}", 1)


def announce_status(job: Job, old: JobStatus, new: JobStatus, when: float) -> None:
    """Tell every observer that ``job`` went from ``old`` to ``new``."""
    for observer in _observers:
        try:
            observer.status_changed(job, old, new, when)
        except Exception as exc:  # noqa: BLE001 - bookkeeping never fails a job
            _report(observer, exc)


def announce_launch(job: Job, launch: Launch) -> None:
    """Tell every observer that ``job``'s runscript started (or its batch job moved on)."""
    for observer in _observers:
        try:
            observer.job_launched(job, launch)
        except Exception as exc:  # noqa: BLE001 - bookkeeping never fails a job
            _report(observer, exc)


# level at which each status change is logged (PLAMS shows levels <= 3 by default)
STATUS_LOG_LEVEL = {
    JobStatus.STARTED: 3,
    JobStatus.REGISTERED: 7,
    JobStatus.RUNNING: 3,
    JobStatus.FINISHED: 5,
    JobStatus.CRASHED: 1,
    JobStatus.FAILED: 1,
    JobStatus.SUCCESSFUL: 3,
    JobStatus.COPIED: 3,
    JobStatus.PREVIEW: 3,
    JobStatus.DELETED: 5,
    JobStatus.CREATED: 7,
}


_CREATED, _DELETED = JobStatus.CREATED, JobStatus.DELETED
_UPPER = {status: status.value.upper() for status in JobStatus}


class StatusLog:
    """Logs ``JOB name STATUS`` lines, at the level of :data:`STATUS_LOG_LEVEL`."""

    def status_changed(self, job: Job, old: JobStatus, new: JobStatus, when: float) -> None:
        """Log the change when its level is shown anywhere."""
        level = STATUS_LOG_LEVEL[new]
        if level <= logger_threshold():
            log(f"JOB {job.name if job.parent is None else job.full_name()} {_UPPER[new]}", level)

    def job_launched(self, job: Job, launch: Launch) -> None:
        """Nothing: starts are said by the RUNNING line."""


class StatusTally:
    """Counts the jobs announced since it subscribed, by their current status.

    The live display of ``plams`` reads :meth:`counts`; it never walks the job list.
    A job is counted from its first change (``created`` to ``started``) on; deleted jobs
    are no longer counted.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def status_changed(self, job: Job, old: JobStatus, new: JobStatus, when: float) -> None:
        """Move one job from ``old`` to ``new``."""
        # (str(status) and JobStatus.X are Python-level lookups: once per job change adds up)
        with self._lock:
            counts = self._counts
            if old is not _CREATED:
                key = STATUS_VALUES[old]
                if counts.get(key, 0) > 0:
                    counts[key] -= 1
            if new is not _DELETED:
                key = STATUS_VALUES[new]
                counts[key] = counts.get(key, 0) + 1

    def job_launched(self, job: Job, launch: Launch) -> None:
        """Nothing: a start is a status change too."""

    def counts(self) -> dict[str, int]:
        """Jobs by status now, zero counts left out."""
        with self._lock:
            return {status: number for status, number in self._counts.items() if number}


subscribe(StatusLog())
