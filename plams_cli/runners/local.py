"""``JobRunner``: runs jobs on this machine, serially or in parallel.

The runner knows nothing of jobs. The life cycle (:mod:`plams_cli.core.lifecycle`)
hands it a job's life cycle as a task (:meth:`JobRunner.submit`: run inline when serial,
in a thread when parallel), asks it for a turn to run a runscript
(:meth:`JobRunner.slot`, the ``maxjobs`` limit) and starts the runscript with
:meth:`JobRunner.call`. :meth:`JobRunner.cancel` returns
:class:`~plams_cli.runners.base.Stopped` records.

Threads and slots
-----------------
A parallel runner gives each job a thread. ``maxthreads`` bounds how many job threads
*work* at once (a "slot"); a thread that waits for another job (its dependencies, a
duplicate still running, results of a job not yet done, or a slot for a child it
submits) gives its slot back while it waits (:func:`waiting`). That is why nested
MultiJobs cannot deadlock, even at ``maxthreads=1``. ``maxjobs`` bounds how many
runscripts run at once.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import queue
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from plams_cli.errors import NotStartedError
from plams_cli.runners.launch import Launch, LaunchCallback, launch_reports_to, report_launch
from plams_cli.runners.processes import STOP_GRACE_S as STOP_GRACE_S
from plams_cli.runners.processes import (
    output_fd,
    process_running,
    signals_deferred,
    spawn,
)
from plams_cli.runners.processes import signals_to_main_thread as signals_to_main_thread
from plams_cli.runners.processes import stop_process_groups as stop_process_groups

if TYPE_CHECKING:
    from plams_cli.runners.base import Stopped

__all__ = ["JobRunner", "cancel_all", "signals_to_main_thread", "stop_process_groups", "waiting", "STOP_GRACE_S"]


_runners: weakref.WeakSet[JobRunner] = weakref.WeakSet()
_NO_LIMIT = 1 << 30  # a semaphore's count for "no limit"
#: longest wait of cancel() for runscripts being started (a start takes milliseconds)
START_WAIT_S = 5.0
_held = threading.local()  # .slot: the semaphore whose slot this thread holds, if any; .leave: see waiting()
#: a job's life cycle, as the life cycle hands it to a runner
Task = Callable[[], None]


@contextlib.contextmanager
def waiting() -> Iterator[None]:
    """Give this thread's slot back for the duration of a wait, and take it again after.

    Core code wraps every blocking wait for another job in this; outside a job thread it
    does nothing.
    """
    leave: Callable[[], None] | None = getattr(_held, "leave", None)
    if leave is not None:  # a job waiting for another gives its place in flight up
        _held.leave = None
        leave()
    slot: threading.Semaphore | None = getattr(_held, "slot", None)
    if slot is None:
        yield
        return
    slot.release()
    _held.slot = None
    try:
        yield
    finally:
        slot.acquire()
        _held.slot = slot



class _Workers:
    """Threads for job life cycles, reused: a new thread only when none is idle.

    Every submitted task starts at once (no queueing behind busy threads: a job thread
    may wait for another job, so a bounded pool could deadlock); a thread that stays
    idle for ``idle_s`` ends. Starting a thread costs about as much as a trivial job's
    own Python work, which is why they are kept.
    """

    def __init__(self, idle_s: float = 5.0) -> None:
        self.idle_s = idle_s
        self._lock = threading.Lock()
        self._tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = 0

    def submit(self, task: Callable[[], None], daemon: bool = True) -> None:
        """Run ``task`` in a worker thread now.

        ``daemon=False`` gives it a thread of its own that the interpreter waits for at
        exit (``config.daemon_threads = False``); only daemon threads are kept for reuse,
        since an idle one would hold up the exit.
        """
        if not daemon:
            with signals_to_main_thread():
                threading.Thread(target=self._run_one, args=(task,), name="plams-worker", daemon=False).start()
            return
        with self._lock:
            if self._idle:
                self._idle -= 1
                self._tasks.put(task)
                return
        with signals_to_main_thread():
            threading.Thread(target=self._work, args=(task,), name="plams-worker", daemon=True).start()

    @staticmethod
    def _run_one(task: Callable[[], None]) -> None:
        try:
            task()
        except SystemExit:
            pass

    def _work(self, task: Callable[[], None] | None) -> None:
        while task is not None:
            try:
                task()
            except SystemExit:
                pass
            except BaseException as exc:  # noqa: BLE001 - report as a thread would, and live on
                threading.excepthook(threading.ExceptHookArgs(
                    (type(exc), exc, exc.__traceback__, threading.current_thread())))
            task = None
            with self._lock:
                self._idle += 1
            try:
                task = self._tasks.get(timeout=self.idle_s)
            except queue.Empty:
                with self._lock:
                    try:  # a task handed over after the timeout, before we took the lock
                        task = self._tasks.get_nowait()
                    except queue.Empty:
                        self._idle -= 1


_workers = _Workers()



def cancel_all() -> list[Stopped]:
    """Cancel what every live runner has started and not finished; one record per runscript or batch job.

    ``str(record)`` is the line the ``plams`` command prints.
    """
    records: list[Stopped] = []
    for runner in list(_runners):
        records.extend(runner.cancel())
    return records


class JobRunner:
    """Run jobs locally, one after another or in parallel threads.

    Parameters
    ----------
    parallel
        ``False``: ``job.run()`` returns when the job is done. ``True``: it returns at
        once and the job runs in a thread of its own.
    maxjobs
        Most runscripts running at the same time (0: no limit).
    maxthreads
        Most job threads working at the same time (0: no limit); threads waiting for
        other jobs do not count.
    """

    def __init__(self, parallel: bool = False, maxjobs: int = 0, maxthreads: int = 256) -> None:
        if maxjobs < 0 or maxthreads < 0:
            raise ValueError(f"maxjobs and maxthreads must be 0 (no limit) or more, not {maxjobs} and {maxthreads}")
        self.parallel = parallel
        self.maxthreads = maxthreads
        self._slots = threading.BoundedSemaphore(maxthreads or _NO_LIMIT)
        self.maxjobs = maxjobs
        self._flight_lock = threading.Lock()
        self._pending: collections.deque[tuple[Task, str, bool]] = collections.deque()
        self._in_flight = 0  # the script's jobs started and not ended (see _take_turn)
        self._processes: set[subprocess.Popen[bytes]] = set()
        self._processes_lock = threading.Condition()  # also: a runscript stopped starting
        self._starting = 0  # calls between the cancelled check and the process being listed
        self._cancel_gave_up = False
        self._cancelled = False
        self._stopped: list[Stopped] = []
        _runners.add(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(parallel={self.parallel}, maxjobs={self.maxjobs})"

    @property
    def maxjobs(self) -> int:
        """Most runscripts running at the same time (0: no limit); may be changed between runs."""
        return self._maxjobs

    @maxjobs.setter
    def maxjobs(self, value: int) -> None:
        if value < 0:
            raise ValueError(f"maxjobs must be 0 (no limit) or more, not {value}")
        self._maxjobs = value
        self._job_limit = threading.BoundedSemaphore(value) if value else None
        self._flight_bound = 2 * value

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called: jobs not started yet are refused from then on."""
        return self._cancelled

    # --- running life cycles ---------------------------------------------------------
    def submit(self, task: Task, *, name: str = "plams-job", daemon: bool = True) -> None:
        """Run ``task`` (a job's life cycle): inline when serial, in a thread of its own when parallel.

        A parallel runner returns at once. A job thread that submits a child (a MultiJob)
        must not wait for a slot while holding its own, or ``maxthreads=1`` would
        deadlock: its child thread waits for a slot by itself. With ``maxjobs``, the
        script's jobs are kept to ``2 * maxjobs`` in flight (see :meth:`_take_turn`).

        Parameters
        ----------
        task
            What to run; it reports its own errors (the life cycle marks its job crashed).
        name
            The thread's name, ``plams-<job name>``.
        daemon
            Whether the thread is a daemon (``config.daemon_threads``); with ``False`` the
            interpreter waits for it at exit even when the script does not.
        """
        if not self.parallel:
            task()
            return
        caller_holds_slot = getattr(_held, "slot", None) is not None
        if not caller_holds_slot and self._job_limit is not None:
            if self._take_turn((task, name, daemon)):
                self._start_in_flight((task, name, daemon))
            return
        if not caller_holds_slot:
            self._slots.acquire()
        try:
            _workers.submit(functools.partial(self._thread_main, task, not caller_holds_slot, name), daemon=daemon)
        except BaseException:
            if not caller_holds_slot:
                self._slots.release()
            raise

    def _run_job(self, job: Any, jobmanager: Any) -> None:
        """PLAMS's name, kept for scripts that call it: run ``job`` (not run yet) with this runner."""
        job.run(jobrunner=self, jobmanager=jobmanager)

    def _thread_main(self, task: Task, has_slot: bool, name: str) -> None:
        if not has_slot:
            self._slots.acquire()
        _held.slot = self._slots
        threading.current_thread().name = name
        try:
            task()
        finally:
            _held.slot = None
            self._slots.release()

    def _take_turn(self, entry: tuple[Task, str, bool]) -> bool:
        """Start the script's job now (True) or queue it (False): ``2 * maxjobs`` in flight.

        A job is "in flight" from its start to its end, except while it waits for another
        job. Without a bound, a script submitting hundreds of jobs at ``maxjobs=2`` starts
        hundreds of threads that prepare their jobs at once, and the few whose runscripts
        just ended wait behind them for the interpreter lock. A queued job is started by
        the thread of a job that ends (no hand-over to another thread) or by one that
        starts waiting, so the script never waits and no job is held back for good.
        """
        with self._flight_lock:
            if self._in_flight < self._flight_bound:
                self._in_flight += 1
                return True
            self._pending.append(entry)
            return False

    def _next_pending(self) -> tuple[Task, str, bool] | None:
        """Hand this thread's place in flight to the next queued job, or give the place up."""
        with self._flight_lock:
            if self._pending:
                return self._pending.popleft()
            self._in_flight -= 1
            return None

    def _start_in_flight(self, entry: tuple[Task, str, bool]) -> None:
        task, name, daemon = entry
        _workers.submit(functools.partial(self._flight_main, task, name), daemon=daemon)

    def _flight_main(self, task: Task, name: str) -> None:
        """Run a job that holds a place in flight, then the queued jobs the place goes to."""
        current: tuple[Task, str] | None = (task, name)
        while current is not None:
            _held.leave = self._leave_flight
            try:
                self._thread_main(current[0], False, current[1])
            finally:
                kept = getattr(_held, "leave", None) is not None  # None: it waited and gave the place up
                _held.leave = None
            following = self._next_pending() if kept else None
            current = following[:2] if following is not None else None

    def _leave_flight(self) -> None:
        """This thread's job waits for another: its place in flight goes to a queued job."""
        entry = self._next_pending()
        if entry is not None:
            self._start_in_flight(entry)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """A turn to run one runscript within the ``maxjobs`` limit: call :meth:`call` inside.

        Waits while ``maxjobs`` runscripts run. A job whose turn comes after a cancel is
        refused (:class:`~plams_cli.errors.NotStartedError`): it never says "running".
        """
        limit = self._job_limit
        if limit is None:
            yield
            return
        limit.acquire()
        try:
            if self._cancelled:
                raise NotStartedError()
            yield
        finally:
            limit.release()

    def _limited_call(self, started: Callable[[], None] | None = None, launched: LaunchCallback | None = None,
                      **kwargs: Any) -> int:
        """:meth:`call` inside :meth:`slot`, kept for code written against earlier versions.

        ``started()`` is called once the turn comes; ``launched`` receives a
        :class:`~plams_cli.runners.launch.Launch` for what ``call()`` started.
        """
        with self.slot():
            if started is not None:
                started()
            with launch_reports_to(launched):
                return self.call(**kwargs)

    # --- the one thing a runner does -------------------------------------------------
    def call(
        self,
        runscript: str,
        workdir: str,
        out: str | None,
        err: str | None,
        runflags: Mapping[str, Any] | None = None,
    ) -> int:
        """Run ``runscript`` in ``workdir`` and return its exit code.

        Parameters
        ----------
        runscript
            File name, inside ``workdir``, of an executable script with a shebang line.
        workdir
            Folder to run in.
        out, err
            File names in ``workdir`` for stdout and stderr; ``out=None`` leaves stdout
            to the runscript (``runscript.stdout_redirect``).
        runflags
            Extra options of the run (``job.settings.run``); a local runner ignores them.

        Returns
        -------
        int
            The exit code; minus the signal number when the runscript was killed.

        Raises
        ------
        JobError
            The runscript could not be started, e.g. its interpreter does not exist.
        """
        if self._cancelled:
            raise NotStartedError()
        path = os.path.join(workdir, runscript)
        opened: list[int] = []
        process: subprocess.Popen[bytes] | None = None
        with self._processes_lock:
            if self._cancelled:
                raise NotStartedError()
            self._starting += 1  # cancel() waits for this start, so it sees the process
        starting = True
        try:
            # Ctrl-C between the fork and the moment the process is known would leave the
            # runscript running unseen: held back until then, it lands in this try.
            with signals_deferred():
                try:
                    stdout = output_fd(workdir, out, opened)
                    stderr = output_fd(workdir, err, opened)
                    spawned = time.time()
                    process = spawn(path, workdir, stdout, stderr)
                finally:
                    for fd in opened:
                        os.close(fd)
                with self._processes_lock:
                    self._processes.add(process)
                    self._starting -= 1
                    starting = False
                    self._processes_lock.notify_all()
                    late = self._cancel_gave_up
            if late:  # cancel() gave up waiting for this start: stop it here
                self._stop(process)
            report_launch(Launch("local", str(process.pid), spawned))
            return process.wait()
        except BaseException:
            # Ctrl-C (or any exception) while waiting: the runscript leads a session of
            # its own and would run on unseen; stop it and let cancel() report it.
            if process is not None:
                self._stop(process)
            raise
        finally:
            with self._processes_lock:
                if starting:  # the start failed
                    self._starting -= 1
                    self._processes_lock.notify_all()
                if process is not None:
                    self._processes.discard(process)

    def cancel(self) -> list[Stopped]:
        """Stop the runscripts this runner is running (SIGTERM to their process groups, SIGKILL
        to those still alive :data:`STOP_GRACE_S` later).

        Jobs not yet started are refused from now on.

        Returns
        -------
        list of Stopped
            One record per runscript stopped (kind ``"local"``, its pid, its path, the
            signals it took), including any stopped because an exception interrupted its
            wait; ``str(record)`` is the line ``plams`` prints.
        """
        self._cancelled = True
        with self._processes_lock:
            # runscripts being started now are waited for (milliseconds), so none is missed
            if not self._processes_lock.wait_for(lambda: self._starting == 0, timeout=START_WAIT_S):
                self._cancel_gave_up = True  # those starts stop their runscripts themselves
            processes = list(self._processes)
        self._stop(*processes)
        records, self._stopped = self._stopped, []
        return records

    def _stop(self, *processes: subprocess.Popen[bytes]) -> None:
        """Stop the process groups of ``processes`` still running, and remember a record for each.

        Waits up to :data:`STOP_GRACE_S` for them to end after SIGTERM, then SIGKILLs them.
        """
        groups = {process.pid: functools.partial(process_running, process) for process in processes
                  if process.poll() is None}
        if not groups:
            return
        done: dict[int, str] = {}
        try:
            stop_process_groups(groups, done=done)
        finally:
            from plams_cli.runners.base import Stopped  # here: the dataclass machinery costs every start ~4 ms

            for process in processes:
                if process.pid in done:
                    how = done[process.pid]
                    self._stopped.append(Stopped(
                        "local", str(process.pid), str(process.args[0]),  # type: ignore[index]
                        signals=tuple(sig for sig in ("SIGTERM", "SIGKILL") if sig in how), detail=how))
