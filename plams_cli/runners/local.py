"""``JobRunner``: runs jobs on this machine, serially or in parallel.

The runner knows nothing of job internals: it drives a job through the three hooks
every job has (``_prepare``, ``_execute``, ``_finalize``, wrapped by the job's own
``_lifecycle``) and offers :meth:`JobRunner.call` to start one runscript.

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
import errno
import functools
import os
import queue
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from plams_cli.errors import JobError, NotStartedError
from plams_cli.runners.launch import Launch, LaunchCallback, launch_reports_to, report_launch

__all__ = ["JobRunner", "cancel_all", "signals_to_main_thread", "stop_process_groups", "waiting", "STOP_GRACE_S"]

#: seconds a stopped runscript's process group has to end after SIGTERM before it gets SIGKILL
STOP_GRACE_S = 3.0

_runners: weakref.WeakSet[JobRunner] = weakref.WeakSet()
_NO_LIMIT = 1 << 30  # a semaphore's count for "no limit"
_held = threading.local()  # .slot: the semaphore whose slot this thread holds, if any


@contextlib.contextmanager
def waiting() -> Iterator[None]:
    """Give this thread's slot back for the duration of a wait, and take it again after.

    Core code wraps every blocking wait for another job in this; outside a job thread it
    does nothing.
    """
    runner: JobRunner | None = getattr(_held, "flight", None)
    if runner is not None:  # a job waiting for another gives its place in flight up
        runner._leave_flight()
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


_MAIN_THREAD_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def signals_to_main_thread() -> Iterator[None]:
    """Start helper threads inside this block: Ctrl-C and SIGTERM stay with the main thread.

    A thread inherits the signal mask of the thread that starts it. The kernel hands a
    process signal to any thread that does not block it; Python then only raises
    ``KeyboardInterrupt`` when the main thread runs bytecode again, which a main thread
    waiting for a runscript does not do until the runscript ends. Blocking the signals
    while threads are started keeps them for the main thread, whose wait they interrupt.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _MAIN_THREAD_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back inside the block, and deliver them at its end.

    Only the main thread gets ``KeyboardInterrupt`` (helper threads start with the
    signals blocked, see :func:`signals_to_main_thread`), so elsewhere it does nothing;
    so it does where a handler was not installed from Python and cannot be put back.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in _MAIN_THREAD_SIGNALS}
    if any(handler is None for handler in previous.values()):
        yield
        return
    caught: list[int] = []
    for sig in previous:
        signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in caught:
            signal.raise_signal(signum)


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


def _group_alive(pgid: int, leader_running: Callable[[], bool]) -> bool:
    """Whether process group ``pgid`` still has a live process.

    ``leader_running()`` says whether the leader runs; after it, the group is asked with
    signal 0, and when that finds someone, whether it is more than zombies (a leader
    whose parent has not reaped it yet is still a member).
    """
    if leader_running():
        return True
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    import psutil  # here only: core imports this module, and this is rare

    for process in psutil.process_iter(["status"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                return True
    return False


def stop_process_groups(groups: Mapping[int, Callable[[], bool]], grace_s: float | None = None,
                        done: dict[int, str] | None = None) -> dict[int, str]:
    """SIGTERM each process group, wait for them to end, SIGKILL those still alive after ``grace_s``.

    Parameters
    ----------
    groups
        Process-group id (the leader's pid) -> a function saying whether the leader still
        runs (see :func:`_group_alive`).
    grace_s
        How long SIGTERM may take; default :data:`STOP_GRACE_S`.
    done
        Filled as it goes: pgid -> what was sent (``"SIGTERM"`` or ``"SIGTERM, then
        SIGKILL after 3 s"``). Groups already gone are left out.

    A KeyboardInterrupt while waiting (a second Ctrl-C) is taken as "now": the groups
    still alive get SIGKILL at once, and the interrupt is not raised again.

    Returns
    -------
    dict
        ``done``.
    """
    grace = STOP_GRACE_S if grace_s is None else grace_s
    done = {} if done is None else done
    for pgid, leader_running in groups.items():
        if not _group_alive(pgid, leader_running):
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
            done[pgid] = "SIGTERM"
    waited = ""
    deadline = time.monotonic() + grace
    try:
        while any(_group_alive(pgid, groups[pgid]) for pgid in done):
            if time.monotonic() >= deadline:
                waited = f" after {grace:g} s"
                break
            time.sleep(0.05)
    except KeyboardInterrupt:
        waited = " at once (interrupted again)"
    for pgid in done:
        if _group_alive(pgid, groups[pgid]):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
                done[pgid] = f"SIGTERM, then SIGKILL{waited}"
    return done


def cancel_all() -> list[str]:
    """Cancel what every live runner has started and not finished; one line per item."""
    lines: list[str] = []
    for runner in list(_runners):
        lines.extend(str(record) for record in runner.cancel())  # GridRunner gives records
    return lines


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
        self._pending: collections.deque[tuple[Any, Any, str, bool]] = collections.deque()
        self._in_flight = 0  # the script's jobs started and not ended (see _take_turn)
        self._processes: set[subprocess.Popen[bytes]] = set()
        self._processes_lock = threading.Lock()
        self._cancelled = False
        self._stopped: list[str] = []
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

    # --- driving jobs ----------------------------------------------------------------
    def _run_job(self, job: Any, jobmanager: Any) -> None:
        """Drive ``job`` through its life cycle: inline when serial, in a thread when parallel.

        A parallel runner returns at once. A job thread that submits a child (a MultiJob)
        must not wait for a slot while holding its own, or ``maxthreads=1`` would
        deadlock: its child thread waits for a slot by itself. With ``maxjobs``, the
        script's jobs are kept to ``2 * maxjobs`` in flight (see :meth:`_take_turn`).
        """
        if not self.parallel:
            job._lifecycle(self, jobmanager)
            return
        caller_holds_slot = getattr(_held, "slot", None) is not None
        daemon = bool(getattr(job, "_daemon_thread", True))
        name = f"plams-{getattr(job, 'name', 'job')}"
        if not caller_holds_slot and self._job_limit is not None:
            task = (job._lifecycle, jobmanager, name, daemon)
            if self._take_turn(task):
                self._start_in_flight(task)
            return
        if not caller_holds_slot:
            self._slots.acquire()
        plain = (job._lifecycle, jobmanager, not caller_holds_slot, name)
        try:
            _workers.submit(lambda: self._thread_main(*plain), daemon=daemon)
        except BaseException:
            if not caller_holds_slot:
                self._slots.release()
            raise

    def _thread_main(
        self, lifecycle: Callable[[JobRunner, Any], None], jobmanager: Any, has_slot: bool, name: str
    ) -> None:
        if not has_slot:
            self._slots.acquire()
        _held.slot = self._slots
        threading.current_thread().name = name
        try:
            lifecycle(self, jobmanager)
        finally:
            _held.slot = None
            self._slots.release()

    def _take_turn(self, task: tuple[Any, Any, str, bool]) -> bool:
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
            self._pending.append(task)
            return False

    def _next_pending(self) -> tuple[Any, Any, str, bool] | None:
        """Hand this thread's place in flight to the next queued job, or give the place up."""
        with self._flight_lock:
            if self._pending:
                return self._pending.popleft()
            self._in_flight -= 1
            return None

    def _start_in_flight(self, task: tuple[Any, Any, str, bool]) -> None:
        lifecycle, jobmanager, name, daemon = task
        _workers.submit(lambda: self._flight_main(lifecycle, jobmanager, name), daemon=daemon)

    def _flight_main(self, lifecycle: Callable[[JobRunner, Any], None], jobmanager: Any, name: str) -> None:
        """Run a job that holds a place in flight, then the queued jobs the place goes to."""
        task: tuple[Any, Any, str] | None = (lifecycle, jobmanager, name)
        while task is not None:
            _held.flight = self
            try:
                self._thread_main(task[0], task[1], False, task[2])
            finally:
                kept = getattr(_held, "flight", None) is self  # False: it waited and gave the place up
                _held.flight = None
            following = self._next_pending() if kept else None
            task = following[:3] if following is not None else None

    def _leave_flight(self) -> None:
        """This thread's job waits for another: its place in flight goes to a queued job."""
        _held.flight = None
        task = self._next_pending()
        if task is not None:
            self._start_in_flight(task)

    def _limited_call(self, started: Callable[[], None] | None = None, launched: LaunchCallback | None = None,
                      **kwargs: Any) -> int:
        """:meth:`call` within the ``maxjobs`` limit; jobs use this rather than ``call``.

        ``started()`` is called once the limit lets the runscript start (the job then
        says it is running); ``launched`` receives a :class:`~plams_cli.runners.launch.Launch`
        for what ``call()`` started (a process id, a grid job id).
        """
        if self._job_limit is None:
            if started is not None:
                started()
            with launch_reports_to(launched):
                return self.call(**kwargs)
        self._job_limit.acquire()
        try:
            if self._cancelled:  # cancelled while it waited for its turn: it never says "running"
                raise NotStartedError()
            if started is not None:
                started()
            with launch_reports_to(launched):
                return self.call(**kwargs)
        finally:
            self._job_limit.release()

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
        try:
            # Ctrl-C between the fork and the moment the process is known would leave the
            # runscript running unseen: held back until then, it lands in this try.
            with _signals_deferred():
                try:
                    stdout = _output_fd(workdir, out, opened)
                    stderr = _output_fd(workdir, err, opened)
                    spawned = time.time()
                    process = _spawn(path, workdir, stdout, stderr)
                finally:
                    for fd in opened:
                        os.close(fd)
                with self._processes_lock:
                    self._processes.add(process)
            report_launch(Launch("local", str(process.pid), spawned))
            return process.wait()
        except BaseException:
            # Ctrl-C (or any exception) while waiting: the runscript leads a session of
            # its own and would run on unseen; stop it and let cancel() report it.
            if process is not None:
                self._stop(process)
            raise
        finally:
            if process is not None:
                with self._processes_lock:
                    self._processes.discard(process)

    def cancel(self) -> list[str]:
        """Stop the runscripts this runner is running (SIGTERM to their process groups, SIGKILL
        to those still alive :data:`STOP_GRACE_S` later).

        Jobs not yet started are refused from now on. Returns one line per runscript
        stopped, saying which signals it took, including any stopped because an exception
        interrupted its wait.
        """
        self._cancelled = True
        with self._processes_lock:
            processes = list(self._processes)
        self._stop(*processes)
        lines, self._stopped = self._stopped, []
        return lines

    def _stop(self, *processes: subprocess.Popen[bytes]) -> None:
        """Stop the process groups of ``processes`` still running, and remember a line for each.

        Waits up to :data:`STOP_GRACE_S` for them to end after SIGTERM, then SIGKILLs them.
        """
        groups = {process.pid: functools.partial(_running, process) for process in processes
                  if process.poll() is None}
        if not groups:
            return
        done: dict[int, str] = {}
        try:
            stop_process_groups(groups, done=done)
        finally:
            for process in processes:
                if process.pid in done:
                    self._stopped.append(f"stopped runscript {process.args[0]!s} "  # type: ignore[index]
                                         f"(pid {process.pid}): {done[process.pid]}")


def _running(process: subprocess.Popen[bytes]) -> bool:
    return process.poll() is None


_OUTPUT_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


def _output_fd(workdir: str, name: str | None, opened: list[int]) -> int:
    """A new file ``name`` in ``workdir`` opened for the runscript's output (or DEVNULL)."""
    if not name:
        return subprocess.DEVNULL
    fd = os.open(os.path.join(workdir, name), _OUTPUT_FLAGS, 0o644)
    opened.append(fd)
    return fd


def _spawn(path: str, workdir: str, stdout: Any, stderr: Any) -> subprocess.Popen[bytes]:
    """Start ``path`` in a session of its own, retrying while the file is busy.

    Another job thread may fork while it still has its own runscript open for writing;
    the forked child holds that descriptor until it execs, and for that moment every
    runscript written then is "busy" (ETXTBSY) to exec. The window lasts microseconds,
    so a few short retries always get through.
    """
    delay = 0.001
    while True:
        try:
            return subprocess.Popen(
                [path], cwd=workdir, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            if exc.errno == errno.ETXTBSY and delay < _BUSY_RETRY_LIMIT_S:
                time.sleep(delay)
                delay *= 2
                continue
            raise JobError(_launch_error(path, exc)) from exc


#: give up on a runscript that stays "text file busy" after about this long
_BUSY_RETRY_LIMIT_S = 2.0


def _launch_error(path: str, exc: OSError) -> str:
    """Say why ``path`` could not be executed, naming a missing interpreter."""
    if not os.path.exists(path):
        return f"runscript {path} does not exist"
    interpreter = ""
    try:
        with open(path, "rb") as handle:
            first = handle.readline().decode(errors="replace").strip()
        if first.startswith("#!"):
            interpreter = first[2:].strip().split()[0] if first[2:].strip() else ""
    except OSError:
        pass
    if isinstance(exc, FileNotFoundError) and interpreter:
        return f"cannot run {path}: its interpreter {interpreter} (from the shebang line) does not exist"
    if isinstance(exc, PermissionError):
        return f"cannot run {path}: permission denied (is it executable, and is its interpreter?)"
    if exc.errno == 8:  # ENOEXEC: no shebang line
        return f"cannot run {path}: it has no shebang line (set settings.runscript.shebang)"
    return f"cannot run {path}: {exc.strerror or exc}"
