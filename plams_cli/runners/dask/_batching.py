"""Tasks to Dask and results back in batches: what makes a thousand small jobs cheap.

Every job thread waits in :meth:`DaskRunner.call <._runner.DaskRunner.call>`; handing each
task to Dask on its own (``client.submit``) and reading each result on its own
(``future.result()``) costs a round trip through the client's event loop apiece, which
on a busy machine is most of a trivial job's time. Here one thread submits whatever tasks
arrived meanwhile in one ``client.map`` per set of resources, and another reads the results
of whatever tasks ended meanwhile in one ``client.gather``. A job thread only waits for its
task's event.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Any

from plams_cli.runners.dask._worker import run_runscript
from plams_cli.runners.launch import LaunchCallback
from plams_cli.runners.local import signals_to_main_thread

__all__ = ["Task", "Batcher"]


@dataclass(eq=False)
class Task:
    """One runscript handed to Dask, and what became of it."""

    key: str
    runscript: str
    #: the arguments of :func:`~._worker.run_runscript` after ``key``-less ones: see :meth:`Batcher._submit`
    args: tuple[Any, ...]
    resources: dict[str, Any] | None
    report: LaunchCallback | None
    future: Any = None
    started: dict[str, Any] | None = None
    outcome: dict[str, Any] | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


def _drain(source: queue.SimpleQueue[Task | None]) -> list[Task | None]:
    items = [source.get()]
    while True:
        try:
            items.append(source.get_nowait())
        except queue.Empty:
            return items


class Batcher:
    """Submits :class:`Task` s to ``client`` and sets each one's ``outcome`` (or ``error``) and ``done``.

    Parameters
    ----------
    client
        The ``distributed.Client``.
    retries
        Dask's retries of a task that raised (a worker that closed mid-job).
    refuse
        Called for each task before it is submitted; an exception it returns ends the task
        unsubmitted (the run was cancelled).
    """

    def __init__(self, client: Any, retries: int, refuse: Any) -> None:
        self.client = client
        self.retries = retries
        self._refuse = refuse
        self._incoming: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        self._ended: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        with signals_to_main_thread():
            for target, name in ((self._submit_loop, "submit"), (self._collect_loop, "collect")):
                threading.Thread(target=target, name=f"plams-dask-{name}", daemon=True).start()

    def submit(self, task: Task) -> None:
        """Queue ``task`` for the next batch."""
        self._incoming.put(task)

    def close(self) -> None:
        """Stop both threads once what is queued is handled."""
        self._incoming.put(None)
        self._ended.put(None)

    def _submit_loop(self) -> None:
        while True:
            items = _drain(self._incoming)
            groups: dict[tuple[tuple[str, Any], ...], list[Task]] = {}
            for task in items:
                if task is None:
                    continue
                refused = self._refuse()
                if refused is not None:
                    task.error = refused
                    task.done.set()
                    continue
                groups.setdefault(tuple(sorted((task.resources or {}).items())), []).append(task)
            for resources, tasks in groups.items():
                self._submit(tasks, dict(resources) or None)
            if None in items:
                return

    def _submit(self, tasks: list[Task], resources: dict[str, Any] | None) -> None:
        columns = list(zip(*(task.args for task in tasks), strict=True))
        try:
            futures = self.client.map(run_runscript, *columns, key=[task.key for task in tasks], pure=False,
                                      resources=resources, retries=self.retries)
        except Exception as exc:  # noqa: BLE001 - each job crashes with the reason
            for task in tasks:
                task.error = exc
                task.done.set()
            return
        for task, future in zip(tasks, futures, strict=True):
            task.future = future
            future.add_done_callback(lambda _, task=task: self._ended.put(task))

    def _collect_loop(self) -> None:
        while True:
            items = _drain(self._ended)
            tasks = [task for task in items if task is not None]
            finished = [task for task in tasks if task.future.status == "finished"]
            if finished:
                try:
                    results = self.client.gather([task.future for task in finished])
                except Exception:  # noqa: BLE001 - the waiters ask their futures one by one
                    results = [None] * len(finished)
                for task, result in zip(finished, results, strict=True):
                    task.outcome = result
            for task in tasks:
                task.done.set()
            if None in items:
                return
