"""Runscript processes: starting them, stopping their process groups, and where signals go.

Every runscript leads a session (and process group) of its own, so stopping a job stops
everything it started (:func:`stop_process_groups`). Helper threads are started with
Ctrl-C and SIGTERM blocked (:func:`signals_to_main_thread`), so the main thread gets them.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # the C module under signal (no stubs)
import contextlib
import errno
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from plams_cli._fs import pid_alive
from plams_cli.errors import JobError

__all__ = ["STOP_GRACE_S", "signals_to_main_thread", "signals_deferred", "stop_process_groups", "spawn",
           "output_fd", "process_running"]

#: seconds a stopped runscript's process group has to end after SIGTERM before it gets SIGKILL
STOP_GRACE_S = 3.0

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


_DEFERRED_SIGNALS = (int(signal.SIGINT), int(signal.SIGTERM))


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back inside the block, and deliver them at its end.

    Only the main thread gets ``KeyboardInterrupt`` (helper threads start with the
    signals blocked, see :func:`signals_to_main_thread`), so elsewhere it does nothing;
    so it does where a handler was not installed from Python and cannot be put back.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # _signal: the C functions under the signal module, without its enum conversions
    # (those cost more than the rest of the block; this runs once per serial job)
    previous = [(sig, _signal.getsignal(sig)) for sig in _DEFERRED_SIGNALS]
    if any(handler is None for _, handler in previous):
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: object) -> None:
        caught.append(signum)

    for sig, _ in previous:
        _signal.signal(sig, hold)
    try:
        yield
    finally:
        for sig, handler in previous:
            _signal.signal(sig, handler)
        for signum in caught:
            signal.raise_signal(signum)


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

    for pid in psutil.pids():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) == pgid and pid_alive(pid):
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


def process_running(process: subprocess.Popen[bytes]) -> bool:
    return process.poll() is None


_OUTPUT_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


def output_fd(workdir: str, name: str | None, opened: list[int]) -> int:
    """A new file ``name`` in ``workdir`` opened for the runscript's output (or DEVNULL)."""
    if not name:
        return subprocess.DEVNULL
    fd = os.open(os.path.join(workdir, name), _OUTPUT_FLAGS, 0o644)
    opened.append(fd)
    return fd


def spawn(path: str, workdir: str, stdout: Any, stderr: Any) -> subprocess.Popen[bytes]:
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
