"""The runner contract: what the job life cycle needs of a runner, and what a cancel returns.

Every runner — :class:`~plams_cli.runners.local.JobRunner` (this machine, serial or
parallel), :class:`~plams_cli.runners.grid.GridRunner` (batch queues), and later ones —
implements :class:`Runner`. A cancel returns :class:`Stopped` records, one per runscript
or batch job it stopped; callers format them (``str(record)`` is the line the ``plams``
command prints) and never parse text back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = ["Runner", "ThreadedRunner", "Stopped"]


@dataclass(frozen=True)
class Stopped:
    """One runscript or batch job a cancel stopped (or tried to).

    Attributes
    ----------
    kind
        ``"local"`` (a process group of this machine), ``"grid"`` (a batch job) or
        ``"dask"`` (a runscript's process group on a Dask worker).
    job_id
        The process id (the leader of the runscript's process group) or the grid job id.
    runscript
        The runscript (its path for local jobs; the batch job's name for grid jobs).
    signals
        What was sent, e.g. ``("SIGTERM",)`` or ``("SIGTERM", "SIGKILL")``; empty for grid jobs.
    detail
        More words: how long SIGKILL waited, the grid's name and queue state, or why a
        grid cancel failed.
    ok
        ``False`` when the cancel did not go through (the scheduler refused it).
    grid
        The grid's name for grid jobs.
    """

    kind: Literal["local", "grid", "dask"]
    job_id: str
    runscript: str
    signals: tuple[str, ...] = field(default=())
    detail: str = ""
    ok: bool = True
    grid: str | None = None

    def __str__(self) -> str:
        if self.kind == "local":
            return f"stopped runscript {self.runscript} (pid {self.job_id}): {self.detail}"
        if self.kind == "dask":
            if not self.ok:
                return f"could not stop {self.runscript}: {self.detail}"
            return f"stopped runscript {self.runscript} (pid {self.job_id}): {self.detail}"
        if self.ok:
            return f"cancelled {self.grid} job {self.job_id} ({self.runscript}, {self.detail})"
        return f"could not cancel {self.grid} job {self.job_id} ({self.runscript}): {self.detail}"


@runtime_checkable
class Runner(Protocol):
    """What the job life cycle asks of a runner.

    ``call`` keeps PLAMS's signature, so PLAMS-style runners with only ``call`` still work
    (the life cycle then says RUNNING itself and learns no process id).
    """

    parallel: bool

    def call(self, runscript: str, workdir: str, out: str | None, err: str | None,
             runflags: Mapping[str, Any] | None = None) -> int:
        """Run ``runscript`` in ``workdir`` and return its exit code."""
        ...

    def cancel(self) -> list[Stopped]:
        """Stop what this runner runs; refuse new work from now on."""
        ...


@runtime_checkable
class ThreadedRunner(Runner, Protocol):
    """A runner that also runs life cycles and gives runscripts their turns (every ``JobRunner``).

    The life cycle (:mod:`plams_cli.core.lifecycle`) uses each operation when the runner
    has it: without ``submit`` it drives the job in the calling thread; without ``slot``
    it calls ``call()`` at once; without ``cancelled`` it never refuses a job.
    """

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called: jobs not started yet are refused."""
        ...

    def submit(self, task: Callable[[], None], *, name: str = "plams-job", daemon: bool = True) -> None:
        """Run ``task`` (a job's life cycle): inline when serial, in a thread when parallel."""
        ...

    def slot(self) -> AbstractContextManager[None]:
        """A turn to run one runscript (the ``maxjobs`` limit); ``call()`` is made inside it."""
        ...
