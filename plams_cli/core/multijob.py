"""``MultiJob``: a job made of child jobs, which may add more children when they end.

The life cycle (:mod:`plams_cli.core.lifecycle`) registers a MultiJob like any job, then
calls :meth:`MultiJob.execute`: it runs the children (through the life cycle again, with
its ``childrunner``) and ends when its last child does (:meth:`MultiJob.child_ended`);
:meth:`MultiJob.new_children` may then add a new generation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from plams_cli.core import lifecycle
from plams_cli.core import runtime as _config_module
from plams_cli.core.job import Job
from plams_cli.core.status import JobStatus

__all__ = ["MultiJob"]


class MultiJob(Job):
    """A job made of child jobs, run with ``childrunner`` (default: the MultiJob's runner).

    The MultiJob ends when its last child does; :meth:`new_children` may then add more.
    It is not hashed; its children are.

    Parameters
    ----------
    children
        A list or dict of jobs.
    childrunner
        Runner for the children.
    **kwargs
        ``name``, ``settings``, ``depend``: see :class:`Job`.
    """

    __module__ = "plams_cli.core.jobs"  # its public home: saved jobs and summaries name it there

    runs_in_preview = True

    def __init__(self, children: list[Job] | dict[Any, Job] | None = None, childrunner: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.children: list[Job] | dict[Any, Job] = [] if children is None else children
        self.childrunner = childrunner
        self._pending = 0
        self._ended: set[int] = set()  # ids of the children counted as ended

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("childrunner", None)
        state.pop("_ended", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.childrunner = None
        self._ended = set()
        for child in self:
            child.parent = self

    def __iter__(self) -> Iterator[Job]:
        return iter(self.children.values() if isinstance(self.children, dict) else list(self.children))

    def __len__(self) -> int:
        return len(self.children)

    def __contains__(self, job: object) -> bool:
        return any(child is job for child in self)

    def walk(self) -> Iterator[Job]:
        """Yield this MultiJob and all its descendants, depth first, each before its children.

        Children are taken in order, whether :attr:`children` is a list or a dict.

        Examples
        --------
        >>> inner = MultiJob(name="inner", children={"b": SingleJob(name="b")})
        >>> outer = MultiJob(name="outer", children=[SingleJob(name="a"), inner])
        >>> [job.name for job in outer.walk()]
        ['outer', 'a', 'inner', 'b']
        """
        stack: list[Job] = [self]
        while stack:  # a loop, not recursion: nesting depth is the user's
            job = stack.pop()
            yield job
            if isinstance(job, MultiJob):
                stack.extend(reversed(list(job)))

    def get_errormsg(self) -> str | None:
        """Why the MultiJob crashed or failed, naming the children that did not end well."""
        if self._status == JobStatus.FAILED and not self._error_msg:
            bad = [f"{child.name} ({child.status.value}: {child.get_errormsg()})" for child in self
                   if child.status in (JobStatus.CRASHED, JobStatus.FAILED)]
            if bad:
                return f"job {self.name} failed: children that did not end well: " + "; ".join(bad)
        return super().get_errormsg()

    def new_children(self) -> list[Job] | dict[Any, Job] | None:
        """Called when all children have ended; return more children to run, or ``None``."""
        return None

    def check(self) -> bool:
        """True when every child ended well."""
        return all(child.ok() for child in self)

    # --- steps the life cycle calls ---------------------------------------------------
    def write_files(self) -> None:
        """Nothing to write: the children write their own; they learn their parent here."""
        for child in self:
            child.parent = self

    def execute(self, jobrunner: Any) -> bool:
        """Run the children with ``childrunner`` (or ``jobrunner``); False: the MultiJob ends with its last child."""
        self.status = JobStatus.RUNNING
        self._runner = self.childrunner or jobrunner
        with self._lock:
            self._pending = 1  # held by this submission, released below
        self._run_children(list(self))
        self._count_down()
        return False

    def child_ended(self, child: Job) -> None:
        """Count ``child`` as ended (once, however often it is said); the last one finalizes the MultiJob."""
        with self._lock:
            if id(child) in self._ended:
                return
            self._ended.add(id(child))
        self._count_down()

    def _run_children(self, children: list[Job]) -> None:
        for child in children:
            child.parent = self
            if child.status != JobStatus.CREATED:
                continue
            with self._lock:
                self._pending += 1
            try:  # the MultiJob's run flags reach its children, theirs winning (as in PLAMS)
                child.run(jobrunner=self._runner, jobmanager=self.jobmanager, **self.settings.run)
            except Exception as exc:
                lifecycle.crash(child, exc)

    def _count_down(self) -> None:
        """Count one child (or the submission itself) as ended; the last one finalizes."""
        with self._lock:
            self._pending -= 1
            if self._pending > 0:
                return
        try:
            while True:  # a loop, not recursion: new_children() may add a thousand generations
                more = None if _config_module.config.preview else self.new_children()
                if not more:
                    break
                added = list(more.values()) if isinstance(more, dict) else list(more)
                if isinstance(self.children, dict) and isinstance(more, dict):
                    self.children.update(more)
                elif isinstance(self.children, dict):
                    for child in added:
                        self.children[child.name] = child
                else:
                    self.children.extend(added)
                with self._lock:
                    self._pending = 1  # held by this submission, released below
                self._run_children(added)
                with self._lock:
                    self._pending -= 1
                    if self._pending > 0:
                        return  # the last child to end carries on from here
            lifecycle.finalize(self)
        except BaseException as exc:
            lifecycle.crash(self, exc)
            if not isinstance(exc, Exception):
                raise
