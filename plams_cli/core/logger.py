"""``log()``: PLAMS's leveled log, to stdout and to the working folder's ``logfile``.

Levels run from 0 (always shown) to 7 (debug). A message is printed when its level is at
most ``config.log.stdout`` and written to ``<workdir>/logfile`` when at most
``config.log.file``. The two thresholds are cached in this module and refreshed whenever
``config.log`` changes, so a filtered-out call costs one comparison.

A thread can hold its logfile lines back for a moment (:func:`hold_lines`): the few lines
of one step of a job (``JOB x STARTED``, ``Starting x.prerun()``, ``JOB x COPIED``, a few
microseconds apart) then go out in one write. They are written when the holder lets them
go, before anything that may take long (a runscript, user code, a wait), and whenever a
thread that does not hold logs a line; the screen is never held back.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from typing import Any

__all__ = ["log", "threshold", "hold_lines", "release_lines", "write_held"]

_state: dict[str, Any] = {"stdout": 3, "file": 5, "date": True, "time": True, "max": 5}
_lock = threading.Lock()
_logfile: int | None = None  # file descriptor of the logfile, opened for appending
_stream_name = "stdout"  # the sys attribute written to, looked up at each call
_holding = threading.local()  # .on: this thread holds its logfile lines back
_held: list[bytes] = []  # logfile lines held back, of every holding thread, in order (under _lock)


def log(message: object, level: int = 0) -> None:
    """Log ``message`` at ``level`` (0 always … 7 debug) as ``[dd.mm|HH:MM:SS] message``.

    Parameters
    ----------
    message
        Anything; ``str(message)`` is written.
    level
        PLAMS verbosity level: 0 for what must be said, 3 for job status changes,
        5 for job steps, 7 for debugging.
    """
    if level > _state["max"]:
        return
    line = _prefix() + (message if type(message) is str else str(message)) + "\n"
    with _lock:
        if level <= _state["stdout"]:
            stream = getattr(sys, _stream_name)
            stream.write(line)
            stream.flush()
        if _logfile is not None and level <= _state["file"]:
            # One append per line (or per held step): readable at once. surrogateescape: a
            # folder or job name of undecodable bytes is written back as those bytes.
            _held.append(line.encode("utf-8", "surrogateescape"))
            if not getattr(_holding, "on", False):
                _write_held_locked()


def hold_lines() -> bool:
    """Hold this thread's logfile lines back until :func:`release_lines`; return whether they were held already.

    Pass the result to :func:`release_lines`, so that an inner holder leaves the lines to
    the outer one.
    """
    was = bool(getattr(_holding, "on", False))
    _holding.on = True
    return was


def release_lines(was_held: bool = False) -> None:
    """End :func:`hold_lines` (unless ``was_held``: an outer holder goes on) and write what is held."""
    if was_held:
        return
    _holding.on = False
    if _held:
        write_held()


def write_held() -> None:
    """Write the lines held back now (holding goes on): called before a step that may take long."""
    with _lock:
        _write_held_locked()


def _write_held_locked() -> None:
    """Append the held lines to the logfile in one write (called with the lock held)."""
    data = b"".join(_held)
    _held.clear()
    if not data or _logfile is None:
        return
    try:
        os.write(_logfile, data)
    except OSError as exc:  # a full disk must not crash the job (or the run) that logs
        _logfile_failed(exc)


atexit.register(write_held)


def _logfile_failed(exc: OSError) -> None:
    """Say once on the screen that the logfile cannot be written (called with the lock held)."""
    if _state.get("logfile_error"):
        return
    _state["logfile_error"] = True
    stream = getattr(sys, _stream_name)
    stream.write(f"{_prefix()}WARNING: cannot write to the logfile ({exc.strerror}); "
                 "log lines are missing from it from now on\n")
    stream.flush()


_stamp: list[Any] = [None, ""]  # (second, formatted prefix) of the last line: one strftime a second


def threshold() -> int:
    """The highest level that is logged anywhere now: ``log()`` at a higher level does nothing.

    Lets a caller skip building a message nobody will see.
    """
    return _state["max"]  # type: ignore[no-any-return]


def _prefix() -> str:
    now = int(time.time())
    if _stamp[0] == now:  # (the common case: a line in the same second as the last; configure() resets it)
        return _stamp[1]  # type: ignore[no-any-return]
    show_date, show_time = _state["date"], _state["time"]
    if not (show_date or show_time):
        prefix = ""
    else:
        fmt = "%d.%m|%H:%M:%S" if show_date and show_time else ("%d.%m" if show_date else "%H:%M:%S")
        prefix = "[" + time.strftime(fmt, time.localtime(now)) + "] "
    _stamp[:] = [now, prefix]
    return prefix


def set_stream(name: str) -> None:
    """Send the screen part of the log to ``sys.stdout`` (``"stdout"``, PLAMS's choice) or ``"stderr"``.

    The stream is looked up at each call, so a redirection made later (pytest, rich's
    live display) is honoured. The ``plams`` command picks stderr, keeping stdout for
    what scripts print.
    """
    global _stream_name
    if name not in ("stdout", "stderr"):
        raise ValueError(f"log stream must be 'stdout' or 'stderr', not {name!r}")
    _stream_name = name


def configure(settings: Any) -> None:
    """Take the thresholds and formats from a ``config.log`` branch (called when it changes)."""
    _state["stdout"] = int(settings.get("stdout", 3))
    _state["file"] = int(settings.get("file", 5))
    _state["date"] = bool(settings.get("date", True))
    _state["time"] = bool(settings.get("time", True))
    _stamp[:] = [None, ""]  # the prefix is made anew with the formats
    _state["max"] = max(_state["stdout"], _state["file"] if _logfile is not None else -1)


def open_logfile(path: str) -> None:
    """Start appending log lines to ``path`` (the working folder's ``logfile``)."""
    global _logfile
    write_held()
    with _lock:
        if _logfile is not None:
            os.close(_logfile)
        _logfile = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        _state["logfile_error"] = False
    _state["max"] = max(_state["stdout"], _state["file"])


def close_logfile() -> None:
    """Stop writing to the logfile (``finish()`` calls this)."""
    global _logfile
    write_held()
    with _lock:
        if _logfile is not None:
            os.close(_logfile)
            _logfile = None
    _state["max"] = _state["stdout"]
