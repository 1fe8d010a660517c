"""Every job of a run, recorded in the job cache as it goes (``plams jobs list`` shows them).

:class:`CacheRecorder` is a :class:`~plams_cli.core.observers.LifecycleObserver`: the job
thread only appends the change to a queue; a writer thread, started by the first change
(a run without jobs never starts it, nor imports the cache), wakes every
:data:`FLUSH_INTERVAL_S`, folds the changes into one row per job (its latest state) and
writes the burst in one transaction (:meth:`plams_cli.jobcache.JobCache.record`). So a
job pays a few hundred nanoseconds for being recorded, and the cache one transaction per
burst, however many jobs end in it. While jobs change faster than :data:`BURST_EVENTS`
per interval (a restart reusing thousands of jobs), the writer holds its write until the
burst ends, :data:`MAX_LAG_S` at most: writing row by row meanwhile would slow the
thread that runs the jobs (both need the GIL). A job such a restart reuses in its own folder
is not written again: the run that saved it wrote that folder's row, which one ``count`` per
chunk checks is there, finished (only rows the cache lacks are written).

A cache that cannot be written (read-only, full, corrupt, locked too long) costs one
warning line on the log; the run goes on and is never slower for it: the writer backs off,
and :func:`stop_recording` (called by ``finish()``, and at exit) waits at most
:data:`CLOSE_TIMEOUT_S` for the last burst. ``config.jobcache.enabled: false`` or
``PLAMS_JOBCACHE=off`` turns recording off; ``config.jobcache.path`` or ``PLAMS_JOBCACHE``
choose the file (see :func:`plams_cli.jobcache.resolve_cache_path`).
"""

from __future__ import annotations

import atexit
import collections
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from plams_cli._fs import hostname as this_hostname
from plams_cli.core import observers
from plams_cli.core._files import normal_path
from plams_cli.core.logger import log
from plams_cli.core.status import JobStatus
from plams_cli.runners.launch import Launch
from plams_cli.runners.local import signals_to_main_thread

if TYPE_CHECKING:
    from plams_cli.core.jobs import Job
    from plams_cli.jobcache import JobCache

__all__ = ["CacheRecorder", "start_recording", "hurry_recording", "stop_recording", "current_recorder",
           "FLUSH_INTERVAL_S", "CLOSE_TIMEOUT_S"]

#: seconds between two writes of a burst of changes
FLUSH_INTERVAL_S = 0.2
#: changes arriving within one interval that make a burst: its writes wait until it ends …
BURST_EVENTS = 100
#: … or until the oldest change held has waited this long
MAX_LAG_S = 10.0
#: changes folded into rows and written per transaction
CHUNK_EVENTS = 3000
#: after a failed write, seconds before the next try
RETRY_INTERVAL_S = 2.0
#: longest wait of ``finish()`` for the last write
CLOSE_TIMEOUT_S = 3.0

_Event = tuple["Job", "JobStatus | None", float, "Launch | None"]


class CacheRecorder:
    """Records the jobs announced on the life cycle into the job cache at ``path``.

    Parameters
    ----------
    option
        The cache file as configured (``config.jobcache.path``), resolved in the writer
        thread by :func:`plams_cli.jobcache.resolve_cache_path`, so that a run does not
        pay for importing the cache before its first job.
    hostname
        The server the rows belong to (default: this machine's name).
    """

    def __init__(self, option: str | None = None, hostname: str | None = None) -> None:
        self.option = option
        self.path: str | None = None
        self._resolved = threading.Event()
        self.hostname = hostname or this_hostname()
        self._events: collections.deque[_Event] = collections.deque()
        self._rows: dict[int, list[Any]] = {}  # id(job) -> its row so far (see _fold)
        #: jobs a restart reused in their own folder, and when: their rows are the first run's (see _fold)
        self._in_place: list[tuple[Job, float]] = []
        self._wake = threading.Event()
        self._closing = False
        self._hurry = False  # set by hurry(): write the burst held so far at once
        self._start_lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one fold and write at a time
        self._thread: threading.Thread | None = None
        self._cache: JobCache | None = None
        self._warned = False
        #: rows written so far, and the writes that failed (for tests and the bench)
        self.written = 0
        self.failures = 0

    # --- the observer: cheap, in the job's thread ---------------------------------------
    def status_changed(self, job: Job, old: JobStatus, new: JobStatus, when: float) -> None:
        """Queue the change (the first one starts the writer); ``started`` is left out.

        A job gets its row once it has a folder, which it gets after ``started``; until
        then that change would only be folded into a row never written (see :meth:`_fold`).
        """
        if new is _STARTED:
            return
        self._events.append((job, new, when, None))
        if self._thread is None:
            self.start()

    def job_launched(self, job: Job, launch: Launch) -> None:
        """Queue the start (a process id or a grid job id)."""
        self._events.append((job, None, time.time(), launch))
        if self._thread is None:
            self.start()

    def start(self) -> None:
        """Start the writer thread (once; the first change calls it)."""
        with self._start_lock:
            if self._thread is not None or self._closing:
                return
            thread = threading.Thread(target=self._loop, name="plams-jobcache-writer", daemon=True)
            with signals_to_main_thread():
                thread.start()
            self._thread = thread

    # --- the writer thread -----------------------------------------------------------------
    def resolved_path(self, timeout: float = CLOSE_TIMEOUT_S) -> str | None:
        """The cache file, once the writer thread has found it (``None``: there is none)."""
        self.start()
        self._resolved.wait(timeout)
        return self.path

    def _resolve(self) -> bool:
        try:
            from plams_cli.jobcache import resolve_cache_path

            self.path = resolve_cache_path(self.option)
        except Exception as exc:  # noqa: BLE001 - no cache location: the run goes on without one
            log(f"WARNING: no job cache for this run: {exc}", 1)
        finally:
            self._resolved.set()
        if self.path is None:
            observers.unsubscribe(self)
            self._events.clear()
            return False
        return True

    def _loop(self) -> None:
        if not self._resolve():
            return
        pause = FLUSH_INTERVAL_S
        seen = 0  # changes queued at the last look
        held_since: float | None = None
        while True:
            self._wake.wait(pause)
            self._wake.clear()
            closing, hurry = self._closing, self._hurry
            self._hurry = False
            queued = len(self._events)
            if not (closing or hurry) and queued - seen >= BURST_EVENTS:
                # Jobs end faster than one every few milliseconds (a restart reusing them):
                # writing now would take the GIL from the thread that runs them, row after
                # row. Hold the burst until it ends, or for MAX_LAG_S at most.
                now = time.monotonic()
                held_since = now if held_since is None else held_since
                if now - held_since < MAX_LAG_S:
                    seen = queued
                    continue
            held_since = None
            pause = FLUSH_INTERVAL_S if self.flush() else RETRY_INTERVAL_S
            seen = len(self._events)
            if closing:
                self._close_cache()
                return

    def _close_cache(self) -> None:
        with self._flush_lock:
            cache, self._cache = self._cache, None
        if cache is not None:
            try:
                cache.close()
            except Exception:  # noqa: BLE001 - closing a cache that failed changes nothing
                pass

    def flush(self) -> bool:
        """Write what is queued now (one transaction per :data:`CHUNK_EVENTS` changes); ``False`` when a write failed.

        Safe to call from any thread (the writer thread calls it every
        :data:`FLUSH_INTERVAL_S`).
        """
        with self._flush_lock:
            return self._flush()

    def _flush(self) -> bool:
        if self.path is None:
            return True
        # In chunks: a burst held until its end (tens of thousands of changes) never has
        # all its rows in memory at once.
        todo = len(self._events)
        while True:
            self._fold(CHUNK_EVENTS)
            if not self._write_ready():
                return False
            todo -= CHUNK_EVENTS
            if todo <= 0 or not self._events:
                return True

    def _write_ready(self) -> bool:
        """Write the rows folded so far that have a path, in one transaction; ``False`` when that failed."""
        hostname = self.hostname
        values: list[tuple[Any, ...]] = []
        waiting: dict[int, list[Any]] = {}  # rows without a folder yet: kept for a later write
        for key, state in self._rows.items():
            static = state[_STATIC]
            if static is None:
                if not state[0].path:
                    waiting[key] = state
                    continue
                static = state[_STATIC] = _static_fields(state[0])
            values.append(_values(hostname, static, state))
        in_place = self._in_place
        if not (values or in_place) or self.path is None:
            return True
        try:
            if self._cache is None:
                from plams_cli.jobcache import JobCache

                self._cache = JobCache(self.path)
            if in_place:
                values += self._lacking_rows(self._cache, in_place)
            self._cache.record_values(values)
        except Exception as exc:  # noqa: BLE001 - a cache that cannot be written never fails the run
            self.failures += 1
            if not self._warned:
                self._warned = True
                log(f"WARNING: the job cache {self.path} cannot be written ({type(exc).__name__}: {exc}); "
                    "this run's jobs may be missing from 'plams jobs list'", 1)
            return False
        self._rows = waiting  # (the writes and the folds take turns: see flush())
        self._in_place = []
        self.written += len(values)
        return True

    def _lacking_rows(self, cache: JobCache, in_place: list[tuple[Job, float]]) -> list[tuple[Any, ...]]:
        """The rows of the jobs reused in place that the cache lacks (a cache made or moved since the first run)."""
        status = _cache_statuses()[_COPIED]
        assert status is not None
        paths = [_row_path(job) for job, _ in in_place]
        lacking = set(cache.lacking(self.hostname, status, paths))
        return [_values(self.hostname, static, [job, static, status, when, None, None, None, None])
                for (job, when), path in zip(in_place, paths, strict=True)
                if path in lacking and (static := _static_fields(job))]

    def _fold(self, limit: int) -> None:
        """Move the first ``limit`` queued changes into one row per job, the latest state winning.

        A job's row so far is a list: the job, then its fields (see the ``_STATIC`` … indexes):
        what its folder gives (once it has one), its cache status, time and start.
        """
        events, rows = self._events, self._rows
        if not events:
            return
        statuses = _cache_statuses()
        popleft = events.popleft
        for _ in range(min(limit, len(events))):
            job, status, when, launch = popleft()
            key = id(job)
            if status is _COPIED and getattr(job, "_reused_in_place", False):
                # A restart gave the job the folder of the finished job it reuses: the first
                # run's row of that folder is this job's, unless the cache lacks it (checked
                # when written, one count per chunk: see _lacking_rows).
                rows.pop(key, None)
                self._in_place.append((job, when))
                continue
            state = rows.get(key)
            if state is None or state[0] is not job:
                state = rows[key] = [job, None, None, when, None, None, None, None]
            state[_MTIME] = when
            if status is not None:
                cache_status = statuses[status]
                if cache_status is not None:
                    state[_STATUS] = cache_status
            elif launch is not None:
                state[_JOB_ID] = str(launch.job_id)
                state[_KIND] = launch.kind
                if launch.kind == "local":
                    # the spawn time: psutil's create_time() of the same process is within
                    # milliseconds of it (the cache allows 1.5 s), and costs the run nothing
                    state[_PID_START] = float(launch.started)
                else:
                    state[_GRID] = launch.grid
                    state[_STATUS] = "running" if launch.running else "queueing"
        # a job that ended without ever getting a folder has nothing to show
        for key in [key for key, state in rows.items() if not state[0].path and state[0].status.is_final]:
            del rows[key]

    def hurry(self) -> None:
        """The run's jobs have ended: write what is held now, in the writer thread, while the run ends.

        The end of a run (settling a restart, cleaning the job folders) waits on files
        most of the time, which lets the writer thread run meanwhile; :meth:`close` then
        waits for less.
        """
        if self._thread is not None:
            self._hurry = True
            self._wake.set()

    # --- closing -------------------------------------------------------------------------
    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Write what is left (waiting at most ``timeout`` seconds) and stop the writer."""
        with self._start_lock:
            self._closing = True
            thread = self._thread
        if thread is None:
            if self._events and self._resolve():  # changes seen, writer never started: write in this thread
                self.flush()
                self._close_cache()
            return
        self._wake.set()
        thread.join(timeout)


_STARTED, _COPIED = JobStatus.STARTED, JobStatus.COPIED
_STATUSES: dict[JobStatus, str | None] = {}


def _cache_statuses() -> dict[JobStatus, str | None]:
    """The cache's status name for each of the core's (``None``: not recorded), built once."""
    if not _STATUSES:
        from plams_cli.jobcache import core_status

        table: dict[JobStatus, str | None] = {status: str(core_status(status.value)) for status in JobStatus}
        table[JobStatus.CREATED] = None  # not run yet: nothing to record
        _STATUSES.update(table)
    return _STATUSES


#: where a row so far (see CacheRecorder._fold) keeps each field
_STATIC, _STATUS, _MTIME, _JOB_ID, _KIND, _GRID, _PID_START = range(1, 8)


def _values(hostname: str, static: tuple[Any, ...], state: list[Any]) -> tuple[Any, ...]:
    """A row so far (see CacheRecorder._fold) as the cache's values: the host name, then its
    :data:`~plams_cli.jobcache.store.COLUMNS` in order."""
    return (hostname, static[0], state[_JOB_ID], static[1], static[2], static[3], state[_STATUS],
            static[4], static[5], state[_MTIME], state[_KIND], state[_GRID], state[_PID_START])


def _row_path(job: Job) -> str:
    """The path of ``job``'s row: its folder, absolute and normal."""
    # (once per job of a run: no os.path functions where a string test does)
    path = job.path or ""
    return normal_path(path) if path[:1] == os.sep else os.path.abspath(path)


def _static_fields(job: Job) -> tuple[str, str, str | None, str | None, str | None, str]:
    """What a job's folder gives its row: path, program, input and output file, runscript, comment."""
    path = _row_path(job)
    workdir = getattr(job.jobmanager, "workdir", None)
    name = job.full_name() if job.parent is not None else job.name
    comment = f"job {name} in {workdir}" if workdir else f"job {name}"
    filename = getattr(job, "_filename", None)
    if filename is None:
        return path, type(job).__name__, None, None, None, comment
    return path, type(job).__name__, filename("inp"), filename("out"), path + os.sep + filename("run"), comment



_recorder: CacheRecorder | None = None
_recorder_lock = threading.Lock()


def current_recorder() -> CacheRecorder | None:
    """The recorder of the run going on, if it records."""
    return _recorder


def start_recording(settings: Any = None) -> CacheRecorder | None:
    """Subscribe a recorder for the run that starts, unless recording is off.

    Parameters
    ----------
    settings
        The ``config.jobcache`` branch (``enabled``, ``path``); ``PLAMS_JOBCACHE`` wins
        over ``path``, and ``off`` there turns recording off.
    """
    global _recorder
    settings = settings or {}
    if not settings.get("enabled", True):
        return None
    env = os.environ.get("PLAMS_JOBCACHE")
    if env is not None and env.strip().lower() in ("off", "0", "false", "no", "none"):
        return None
    with _recorder_lock:
        if _recorder is not None:
            return _recorder
        # PLAMS_JOBCACHE wins over config.jobcache.path
        _recorder = CacheRecorder(None if env else (settings.get("path") or None))
        observers.subscribe(_recorder)
        return _recorder


def hurry_recording() -> None:
    """The run's jobs have ended: its recorder, if any, writes what it holds now (:meth:`CacheRecorder.hurry`)."""
    recorder = _recorder
    if recorder is not None:
        recorder.hurry()


def stop_recording(timeout: float = CLOSE_TIMEOUT_S) -> None:
    """Write the last changes (waiting at most ``timeout``) and unsubscribe the recorder."""
    global _recorder
    with _recorder_lock:
        recorder, _recorder = _recorder, None
    if recorder is not None:
        observers.unsubscribe(recorder)
        recorder.close(timeout)


atexit.register(stop_recording)
