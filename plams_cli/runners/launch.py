"""How a runner tells the job it runs that its runscript started: a :class:`Launch` record.

A runner's ``call()`` keeps PLAMS's signature (runscript, workdir, out, err, runflags), so
what it started — a local process or a grid job id — travels back through the calling
thread: the life cycle (:mod:`plams_cli.core.lifecycle`) sets a callback for the
duration of the call (:func:`launch_reports_to`), and ``call()`` hands each start and each
change of a grid job's queue state to :func:`report_launch`. Without a callback (a
runner's ``call()`` used on its own) nothing happens.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Literal, NamedTuple

__all__ = ["Launch", "LaunchCallback", "launch_reports_to", "report_launch", "current_callback"]


class Launch(NamedTuple):
    """A runscript a runner started, or a change of its state in a queue.

    Attributes
    ----------
    kind
        ``"local"`` (a process of this machine), ``"grid"`` (a batch job) or ``"dask"``
        (a runscript on a Dask worker held by a batch job).
    job_id
        The process id, or the scheduler's job id (for ``"dask"``: the worker's batch job).
    started
        Wall-clock time (``time.time()``) of the start or submission.
    grid
        The grid's name (``"slurm"``, ``"pbs"`` …) for grid jobs.
    running
        ``True`` once the runscript runs; a grid job is ``False`` while it is queued.
    """

    kind: Literal["local", "grid", "dask"]
    job_id: str
    started: float
    grid: str | None = None
    running: bool = True


LaunchCallback = Callable[[Launch], None]

_current = threading.local()


@contextlib.contextmanager
def launch_reports_to(callback: LaunchCallback | None) -> Iterator[None]:
    """Send what ``call()`` starts in this thread to ``callback`` inside the block."""
    previous = getattr(_current, "callback", None)
    _current.callback = callback
    try:
        yield
    finally:
        _current.callback = previous


def current_callback() -> LaunchCallback | None:
    """The callback of this thread's current call, for code that reports from another thread."""
    callback: LaunchCallback | None = getattr(_current, "callback", None)
    return callback


def report_launch(launch: Launch, callback: LaunchCallback | None = None) -> None:
    """Hand ``launch`` to ``callback`` (default: this thread's); a failing callback is ignored.

    What the job does with the record is bookkeeping; it must never fail the run.
    """
    target = callback if callback is not None else getattr(_current, "callback", None)
    if target is None:
        return
    try:
        target(launch)
    except Exception:  # noqa: BLE001, S110 - bookkeeping never fails a runscript
        pass
