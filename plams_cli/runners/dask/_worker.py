"""What runs on a Dask worker: a job's runscript in its folder, and stopping runscripts.

Dask pickles these functions by name, so the workers import this module (the same
plams-cli, the same Python). It imports no Dask at the top: the runner's own process
imports it too.

Invariants
----------
* A runscript leads a process group of its own (as with the local runner), so a stop
  reaches everything it started. A worker that closes (its cluster closed, its batch job
  cancelled or out of time: SIGTERM) stops its runscripts first (the worker plugin of
  :mod:`._cluster`); on a worker thread that blocks Ctrl-C and SIGTERM (a LocalCluster's,
  in the plams process) the runscript starts with them unblocked and dies with the thread
  that waits for it (``PR_SET_PDEATHSIG``).
* Before the runscript starts, the job folder gets ``<runscript>.jobid`` (the worker's
  batch job id, host and the task's key, as a grid job's record; ``<runscript>.dask`` on a
  worker that is not a batch job of the runner's own cluster): a restart after a kill
  finds and cancels a worker batch job still queued or running, and a second attempt of
  the same task (its worker was lost) knows it is one. The record goes when the runscript
  ends.
* A task stopped by :func:`stop_runscripts` before its runscript started never starts it.
* A runscript runs to its end at most once per task. With retries, Dask runs a task again
  whose worker was lost before the task's end reached the scheduler, even when its
  runscript had ended (and the runner had ended its job on the worker's word). So such a
  runscript's answer goes into the hidden ``.<runscript>.ended`` (:data:`ENDED_SUFFIX`)
  first; an attempt of the same task that finds it returns that answer and runs nothing.
  The runner deletes it once the task has ended (:func:`forget_ended`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import json
import os
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable
from typing import Any

from plams_cli._fs import atomic_write
from plams_cli.errors import NotStartedError, WorkerLostError
from plams_cli.runners.processes import output_fd, process_running, stop_process_groups

__all__ = ["run_runscript", "run_batch", "stop_runscripts", "batch_job_id", "dask_setup", "LAUNCH_TOPIC", "END_TOPIC",
           "QUICK_S", "JOB_RECORD_SUFFIX", "ATTEMPT_RECORD_SUFFIX", "ENDED_SUFFIX", "forget_ended"]

#: the Dask event topic a worker announces each runscript start on
LAUNCH_TOPIC = "plams-launch"
#: the Dask event topic a worker announces the end of each runscript on (a batch's: also those that failed)
END_TOPIC = "plams-ended"
#: the record of a running task in its job folder (the grid's file name: a restart reads both alike)
JOB_RECORD_SUFFIX = ".jobid"
#: the same record for a worker a restart must not cancel (a LocalCluster's, or the user's)
ATTEMPT_RECORD_SUFFIX = ".dask"
#: the hidden ``.<runscript><suffix>`` holding the answer of a runscript that ended, for a task with retries
ENDED_SUFFIX = ".ended"
#: environment variables holding the batch job id (SLURM, PBS, Grid Engine)
_BATCH_VARIABLES = ("SLURM_JOB_ID", "PBS_JOBID", "JOB_ID")
#: a runscript that ends this soon after its start has its start announced with its end
QUICK_S = 0.01
_PR_SET_PDEATHSIG = 1
_SIGNALS = {signal.SIGINT, signal.SIGTERM}

_lock = threading.Lock()
_running: dict[str, subprocess.Popen[bytes]] = {}
_refused: set[str] = set()
_lost: set[str] = set()  # stopped because the worker closes: the job did not end, its worker went


def batch_job_id() -> str | None:
    """The batch job id this worker runs in, or ``None`` outside a batch job (a LocalCluster)."""
    for name in _BATCH_VARIABLES:
        value = os.environ.get(name)
        if value:
            return value
    return None


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().name)
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"


def _worker_threads() -> int:
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return 1


def _announce(message: dict[str, Any], topic: str = LAUNCH_TOPIC) -> None:
    """Tell the runner a runscript started or ended (a Dask event); it never fails."""
    with contextlib.suppress(Exception):
        from distributed import get_worker

        get_worker().log_event(topic, message)


def _worker_closing() -> bool:
    try:
        from distributed import get_worker
        from distributed.core import Status

        return get_worker().status not in (Status.running, Status.paused)
    except (ImportError, ValueError):
        return False


def dask_setup(worker: Any) -> None:
    """Preload of a batch cluster's workers: a worker its nanny forked dies of SIGTERM as a spawned one does.

    A forked worker inherits the nanny's handlers of SIGTERM and SIGINT, which only wake
    the nanny's event loop (not running in the child): the worker would live on through
    its batch job's end, report a runscript that signal killed as ended, and go before
    its answer was read. With the default handlers back, the batch job's SIGTERM ends
    it at once, and the scheduler sees a worker lost mid-job.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)


@functools.cache
def _prctl() -> Any:
    """libc's ``prctl``, looked up in this process, or ``None``.

    Never in a forked child: ``dlopen`` takes the loader's lock, which another thread
    may have held at the fork (one starting a thread does), and the child would wait
    for it for ever, its parent with it.
    """
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _child_setup() -> None:  # pragma: no cover - runs in the forked child
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
    prctl = _prctl()  # found before the fork (see _spawn)
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def _spawn(path: str, workdir: str, stdout: int, stderr: int) -> subprocess.Popen[bytes]:
    # A preexec_fn makes every start a full fork of the worker (about 10 ms, against 1 ms):
    # only a worker thread that blocks Ctrl-C and SIGTERM (the workers of a LocalCluster,
    # threads of the plams process) pays for it, so that its runscripts can be stopped.
    blocked = bool(_SIGNALS & signal.pthread_sigmask(signal.SIG_BLOCK, ()))
    if blocked:
        _prctl()  # looked up now, in this process: the child only calls it
    delay = 0.001
    while True:
        try:
            return subprocess.Popen([path], cwd=workdir, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                                    start_new_session=True, preexec_fn=_child_setup if blocked else None)
        except OSError as exc:  # another process may still hold the fresh runscript open for writing
            if exc.errno == errno.ETXTBSY and delay < 2.0:
                time.sleep(delay)
                delay *= 2
                continue
            raise


def _check_attempt(record_path: str, key: str, attempts: int) -> int:
    """This task's attempt number; raise when an earlier attempt's worker was lost and no retry is left."""
    try:
        with open(record_path, encoding="utf-8") as handle:
            earlier = json.load(handle)
    except (OSError, ValueError):
        return 1
    if not isinstance(earlier, dict) or earlier.get("dask_key") != key:
        return 1  # a record of another run of the folder
    attempt = int(earlier.get("attempt", 1)) + 1
    if attempt > attempts:
        where = f"batch job {earlier['job_id']}, " if earlier.get("batch") else ""
        raise WorkerLostError(
            f"the Dask worker running it ({earlier.get('worker')}, {where}host {earlier.get('host')}) was lost "
            f"mid-job; not run again ({attempts - 1} retries allowed)")
    return attempt


def _ended_path(workdir: str, runscript: str) -> str:
    return os.path.join(workdir, f".{runscript}{ENDED_SUFFIX}")


def _earlier_answer(ended_path: str, key: str) -> dict[str, Any] | None:
    """The answer an earlier attempt of task ``key`` left when its runscript ended, or ``None``."""
    try:
        with open(ended_path, encoding="utf-8") as handle:
            earlier = json.load(handle)
    except (OSError, ValueError):
        return None
    return earlier if isinstance(earlier, dict) and earlier.get("key") == key else None


def _replay_ended(ended_path: str | None, key: str, record_path: str) -> dict[str, Any] | None:
    """Announce again and return the answer of task ``key``'s runscript if it ended in an earlier attempt.

    Its worker went before the task's end reached the scheduler; the runner may have ended
    its job on the worker's word already, so the runscript must not run again.
    """
    earlier = None if ended_path is None else _earlier_answer(ended_path, key)
    if earlier is not None:
        with contextlib.suppress(OSError):
            os.remove(record_path)
        _announce(earlier, END_TOPIC)
    return earlier


def forget_ended(path: str) -> None:
    """Delete the ended record of runscript ``path`` (absolute): its task has ended, no attempt follows."""
    with contextlib.suppress(OSError):
        os.remove(_ended_path(os.path.dirname(path), os.path.basename(path)))


def _quick_end(process: subprocess.Popen[bytes]) -> int | None:
    """The exit code of a runscript that ends within :data:`QUICK_S` of its start, else ``None``."""
    # One wait on a pidfd, not Popen.wait(timeout)'s polling: a thousand short runscripts
    # would spend more on the polls (each a switch of threads) than on the waiting.
    try:
        fd = os.pidfd_open(process.pid)
    except OSError:  # reaped already (a stop polled it), or a kernel without pidfds
        return process.poll()
    try:
        ended = bool(select.select([fd], [], [], QUICK_S)[0])
    finally:
        os.close(fd)
    return process.wait() if ended else None


def run_runscript(path: str, workdir: str, out: str | None, err: str | None, key: str, attempts: int,
                  grid: str | None, cancel: list[str] | None) -> dict[str, Any]:
    """Run the runscript ``path`` in ``workdir`` on this worker; announce and return its exit code and where it ran.

    The answer goes to the runner as an event on :data:`END_TOPIC` (its job ends then,
    without a round trip for the task's result), and is the task's result too. Its start
    goes on :data:`LAUNCH_TOPIC` once it has run :data:`QUICK_S`; the answer of one that
    ended sooner tells both (one event, not two, for each of a thousand short runscripts).

    Parameters
    ----------
    path, workdir, out, err
        As for :meth:`JobRunner.call <plams_cli.runners.local.JobRunner.call>` (``path``
        absolute).
    key
        The task's key: :func:`stop_runscripts` stops it by this name.
    attempts
        Most attempts of this task (1 + retries); one more raises :class:`WorkerLostError`.
    grid, cancel
        The queueing system's name and the command that cancels this worker's batch job,
        for the job record.

    Returns
    -------
    dict
        ``exit_code`` (minus the signal number when killed), ``pid``, ``host``,
        ``batch_id``, ``worker``, ``started`` and ``ended`` (``time.time()``).
    """
    runscript = os.path.basename(path)
    batch, host, worker = batch_job_id(), socket.gethostname(), _worker_name()
    # Only the batch job of a cluster the runner made goes where a restart cancels it from
    # (``.jobid``); a worker of the user's own cluster is never cancelled.
    suffix = JOB_RECORD_SUFFIX if cancel and batch else ATTEMPT_RECORD_SUFFIX
    record_path = os.path.join(workdir, runscript + suffix)
    ended_path = _ended_path(workdir, runscript) if attempts > 1 else None
    earlier = _replay_ended(ended_path, key, record_path)
    if earlier is not None:
        return earlier
    attempt = _check_attempt(record_path, key, attempts)
    record = {"job_id": batch or str(os.getpid()), "batch": batch is not None, "grid": grid if batch else None,
              "host": host, "name": runscript, "worker": worker, "dask_key": key, "attempt": attempt,
              "cancel": " ".join(cancel + [batch]) if cancel and batch else None}
    atomic_write(record_path, (json.dumps(record) + "\n").encode("utf-8"), fsync=False)
    opened: list[int] = []
    with _lock:
        if key in _refused:
            _refused.discard(key)
            raise NotStartedError()
        try:
            process = _spawn(path, workdir, output_fd(workdir, out, opened), output_fd(workdir, err, opened))
        finally:
            for fd in opened:
                os.close(fd)
        _running[key] = process
    started = time.time()
    info = {"key": key, "pid": process.pid, "host": host, "batch_id": batch, "worker": worker, "started": started,
            "threads": _worker_threads()}
    try:
        code = _quick_end(process)
        if code is None:  # still running: say it started
            _announce(info)
            code = process.wait()
    finally:
        with _lock:
            _running.pop(key, None)
            lost = key in _lost
            _lost.discard(key)
    if lost:  # the record stays: a second attempt of the task counts this one
        where = f"batch job {batch}, " if batch else ""
        raise WorkerLostError(f"the Dask worker running it ({worker}, {where}host {host}) closed mid-job "
                              "(its batch job cancelled or out of time?); the runscript was stopped")
    answer = {**info, "exit_code": code, "ended": time.time()}
    if ended_path is not None:  # before the record goes: an attempt after this one finds one or the other
        atomic_write(ended_path, (json.dumps(answer) + "\n").encode("utf-8"), fsync=False)
    with contextlib.suppress(OSError):
        os.remove(record_path)
    _announce(answer, END_TOPIC)
    return answer


def run_batch(specs: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Run several runscripts one after another (one Dask task for many short jobs).

    Each one's end is announced on :data:`END_TOPIC` at once (its job ends then, not with
    the batch): what :func:`run_runscript` returns, or ``key``, ``error`` (the exception's
    class name) and ``message`` for a runscript that could not run. A worker that closes
    starts no more of them: those left out get no answer.

    Parameters
    ----------
    specs
        The arguments of :func:`run_runscript`, one tuple per runscript.

    Returns
    -------
    list of dict
        The answers, as announced, in the order of ``specs``.
    """
    answers: list[dict[str, Any]] = []
    for spec in specs:
        if _worker_closing():
            break
        try:
            answer = run_runscript(*spec)  # announces its end itself
        except Exception as exc:  # noqa: BLE001 - the job's own failure, the batch goes on
            answer = {"key": spec[4], "error": type(exc).__name__, "message": str(exc)}
            _announce(answer, END_TOPIC)
        answers.append(answer)
    return answers


def stop_runscripts(keys: Iterable[str] | None = None, grace_s: float = 3.0) -> list[dict[str, Any]]:
    """Stop the runscripts of tasks ``keys`` (all when ``None``) on this worker; refuse those not started.

    SIGTERM to each runscript's process group, SIGKILL to those alive ``grace_s`` later.
    ``None`` is the worker closing: its tasks end with :class:`WorkerLostError`.

    Returns
    -------
    list of dict
        One per runscript stopped: ``key``, ``pid``, ``how`` (the signals), ``worker``,
        ``batch_id``, ``host``.
    """
    with _lock:
        chosen = list(_running) if keys is None else list(keys)
        if keys is not None:
            _refused.update(key for key in chosen if key not in _running)
        else:
            _lost.update(chosen)
        processes = {key: _running[key] for key in chosen if key in _running}
    groups = {p.pid: functools.partial(process_running, p) for p in processes.values() if p.poll() is None}
    done: dict[int, str] = {}
    if groups:
        stop_process_groups(groups, grace_s=grace_s, done=done)
    batch, host, worker = batch_job_id(), socket.gethostname(), _worker_name()
    return [{"key": key, "pid": p.pid, "how": done[p.pid], "worker": worker, "batch_id": batch, "host": host}
            for key, p in processes.items() if p.pid in done]
