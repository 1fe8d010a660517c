"""Tasks to Dask and results back in batches: what makes a thousand small jobs cheap.

Every job thread waits in :meth:`DaskRunner.call <._runner.DaskRunner.call>`; handing each
task to Dask on its own (``client.submit``) and reading each result on its own
(``future.result()``) costs a round trip through the client's event loop apiece, which
on a busy machine is most of a trivial job's time. Here one thread submits whatever tasks
arrived meanwhile in one ``client.map`` per set of resources. No result is fetched: the
worker sends each runscript's exit code as a Dask event when it ends (before its task ends,
on the same streams), and another thread only looks at the tasks that ended without one
(their worker was lost). A job thread only waits for its task's ``done``.

Several runscripts in one Dask task
-----------------------------------
Even so, each Dask task costs the scheduler, the client and the worker a few
milliseconds (about 1.5 ms of the plams process's own), more than a trivial runscript.
Once the runscripts seen so far were short (their mean under :data:`BATCH_TARGET_S`),
runscripts that arrive together go to Dask as one task (:func:`~._worker.run_batch`) that
runs them one after another, so that a batch takes about :data:`BATCH_TARGET_S`, at most
:data:`MAX_BATCH` of them, and every worker slot seen still gets two batches of the
backlog. While the workers have work, runscripts arriving wait up to :data:`_LINGER_S`
for more; while the workers hold two full batches per thread, they wait here (they would
not start sooner, and the next batches are full: small ones cost the busy machine more).
Each job ends when its runscript does (the worker announces it, an event), with
its own exit code, output files and status, as a job of its own task would. Never with
``retries``: Dask would run a batch lost mid-way again, its ended runscripts included.
A batch whose worker was lost crashes its runscripts not ended with
:class:`~plams_cli.errors.WorkerLostError` (the worker's last events, a start among them,
may be lost with it, so running them again could run one twice).
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from plams_cli.errors import JobError, NotStartedError, WorkerLostError
from plams_cli.runners.dask._worker import forget_ended, run_batch, run_runscript
from plams_cli.runners.launch import LaunchCallback
from plams_cli.runners.local import signals_to_main_thread

__all__ = ["Task", "Batcher", "settle", "BATCH_TARGET_S", "MAX_BATCH"]

#: about how long one batch of runscripts should take on its worker
BATCH_TARGET_S = 0.1
#: most runscripts in one Dask task
MAX_BATCH = 32
#: longest wait for more runscripts to fill a batch, while the workers are busy anyway
_LINGER_S = 0.02
_settle_lock = threading.Lock()
_WAKE = object()  # to the submit thread: a runscript ended, look at what is held back


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
    #: handed to Dask in a batch: ``future`` is the batch's
    batched: bool = False
    started: dict[str, Any] | None = None
    outcome: dict[str, Any] | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


def settle(task: Task, answer: dict[str, Any] | None, ended: Any = None) -> bool:
    """End ``task`` with its worker's ``answer`` (see :func:`~._worker.run_batch`); a second answer is ignored.

    ``answer`` ``None`` ends it with neither outcome nor error: its waiter asks its future.
    ``ended`` (called with ``answer`` first, under the same lock) is the batcher's count of
    runscripts ended, so that an event and the future's end never count one twice.

    Returns
    -------
    bool
        Whether this call ended the task.
    """
    with _settle_lock:
        if task.done.is_set():
            return False
        if ended is not None:
            ended(answer)
        error = None if answer is None else answer.get("error")
        if answer is None:
            pass
        elif error is None:
            task.outcome = answer
        elif error == "NotStartedError":
            task.error = NotStartedError()
        elif error == "WorkerLostError":
            task.error = WorkerLostError(str(answer.get("message")))
        else:
            task.error = JobError(f"cannot run {task.runscript} on a Dask worker: {error}: {answer.get('message')}")
        task.done.set()
        return True


def _lost(message: str) -> dict[str, Any]:
    return {"error": "WorkerLostError", "message": message}


def _drain(source: queue.SimpleQueue[Any], first: bool = True) -> list[Any]:
    items = [source.get()] if first else []
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
        Dask's retries of a task that raised (a worker that closed mid-job); with any,
        each runscript is a task of its own.
    refuse
        Called for each task before it is submitted; an exception it returns ends the task
        unsubmitted (the run was cancelled).
    counts
        The dict to count ``runscripts`` and ``tasks`` handed to Dask in.
    window
        Most runscripts handed to Dask before any has ended (about twice what the workers
        run at once), or ``None`` (no limit: an adaptive cluster scales by what waits at
        the scheduler). Those held back go once durations are known, batched if short.
    """

    def __init__(self, client: Any, retries: int, refuse: Any, counts: dict[str, int] | None = None,
                 window: int | None = None) -> None:
        self.client = client
        #: ``runscripts`` and ``tasks`` handed to Dask (a batch is one task)
        self.counts = counts if counts is not None else {"runscripts": 0, "tasks": 0}
        self.retries = retries
        self._refuse = refuse
        self._batching = retries == 0
        self._stats = threading.Lock()
        self._mean_s: float | None = None  # runscripts' mean duration, recent ones weighing most
        self._queued = 0  # runscripts submitted and not ended
        self._threads: dict[str, int] = {}  # worker -> its threads, of the workers seen running runscripts
        self._slots = 1  # their sum: the workers' capacity as far as known
        self._window = window
        self._held: list[Task] = []  # accepted, not handed to Dask yet (see window)
        self._incoming: queue.SimpleQueue[Task | object | None] = queue.SimpleQueue()
        self._ended: queue.SimpleQueue[list[Task] | None] = queue.SimpleQueue()
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

    # --- what the workers say (the runner forwards their events) ----------------------
    def started(self, info: dict[str, Any]) -> None:
        """A runscript started on a worker (``info``: what the worker said)."""
        with self._stats:
            self._threads[str(info.get("worker"))] = int(info.get("threads") or 1)
            self._slots = max(1, sum(self._threads.values()))

    def ended(self, answer: dict[str, Any] | None) -> None:
        """A runscript ended (``answer``: what its worker said, with ``started`` and ``ended``)."""
        with self._stats:
            self._queued -= 1
            if answer is None or "ended" not in answer:
                return
            seconds = max(0.0, float(answer["ended"]) - float(answer["started"]))
            self._mean_s = seconds if self._mean_s is None else 0.8 * self._mean_s + 0.2 * seconds
        if self._held:
            self._incoming.put(_WAKE)

    def _full_size(self) -> int:
        """Runscripts in a full batch: about :data:`BATCH_TARGET_S` of them (1: no batching)."""
        with self._stats:
            mean = self._mean_s
        if not self._batching or mean is None:
            return 1
        return max(1, min(MAX_BATCH, int(BATCH_TARGET_S / max(mean, 1e-4))))

    def _batch_size(self, ready: int) -> int:
        """How many of ``ready`` runscripts go in one Dask task (1: each its own).

        A full batch, unless the backlog (queued and ``ready``) is too short to give every
        worker slot two of them: then as many as give it two.
        """
        full = self._full_size()
        with self._stats:
            backlog, slots = self._queued + ready, self._slots
        return max(1, min(full, -(-backlog // (2 * slots))))

    def _workers_fed(self) -> bool:
        """Whether runscripts arriving now wait here: the workers hold two full batches per thread already.

        They would not start sooner at the scheduler, and waiting makes the next batches
        full: on a busy machine, runscripts arrive slowly and would go in small batches,
        whose overhead slows the machine further.
        """
        full = self._full_size()
        with self._stats:
            return full > 1 and self._queued >= 2 * self._slots * full

    # --- submitting ---------------------------------------------------------------------
    def _submit_loop(self) -> None:
        while True:
            items = _drain(self._incoming)
            closing = None in items
            fresh = [item for item in items if isinstance(item, Task)]
            if fresh and not closing and self._full_size() > len(fresh):
                with self._stats:
                    busy = self._queued > 0
                # The workers have work: these would start a little later, in a fuller batch
                # (when runscripts come slowly, the machine is busy: a task less is a gain).
                if busy:
                    time.sleep(_LINGER_S)
                    more = _drain(self._incoming, first=False)
                    closing = None in more
                    fresh += [item for item in more if isinstance(item, Task)]
            accepted: list[Task] = []
            for task in self._held + fresh:
                refused = self._refuse() or (NotStartedError("not started: the Dask cluster was closed")
                                             if closing else None)
                if refused is not None:
                    task.error = refused
                    task.done.set()
                else:
                    accepted.append(task)
            with self._stats:
                room = len(accepted) if self._window is None or self._mean_s is not None \
                    else max(0, self._window - self._queued)
            if room and self._workers_fed():
                room = 0
            self._held = accepted[room:]
            groups: dict[tuple[tuple[str, Any], ...], list[Task]] = {}
            for task in accepted[:room]:
                groups.setdefault(tuple(sorted((task.resources or {}).items())), []).append(task)
            for resources, tasks in groups.items():
                self._submit(tasks, dict(resources) or None)
            if closing:
                return

    def _submit(self, tasks: list[Task], resources: dict[str, Any] | None) -> None:
        size = self._batch_size(len(tasks))
        chunks = [tasks[start:start + size] for start in range(0, len(tasks), size)]
        singles = [chunk[0] for chunk in chunks if len(chunk) == 1]
        batches = [chunk for chunk in chunks if len(chunk) > 1]
        with self._stats:
            self._queued += len(tasks)
            self.counts["runscripts"] += len(tasks)
            self.counts["tasks"] += len(singles) + len(batches)
        try:
            if singles:
                columns = list(zip(*(task.args for task in singles), strict=True))
                futures = self.client.map(run_runscript, *columns, key=[task.key for task in singles], pure=False,
                                          resources=resources, retries=self.retries)
                self._watch([[task] for task in singles], futures)
            if batches:
                futures = self.client.map(run_batch, [[task.args for task in chunk] for chunk in batches],
                                          key=[f"plams-batch-{uuid.uuid4().hex}" for _ in batches], pure=False,
                                          resources=resources)
                self._watch(batches, futures, batched=True)
        except Exception as exc:  # noqa: BLE001 - each job crashes with the reason
            for task in tasks:
                if task.future is None:
                    task.error = exc
                    task.done.set()
                    self.ended(None)

    def _watch(self, chunks: list[list[Task]], futures: list[Any], batched: bool = False) -> None:
        for chunk, future in zip(chunks, futures, strict=True):
            for task in chunk:
                task.future, task.batched = future, batched
            future.add_done_callback(lambda _, chunk=chunk: self._ended.put(chunk))

    # --- collecting -----------------------------------------------------------------------
    def _collect_loop(self) -> None:
        while True:
            items = _drain(self._ended)
            chunks = [chunk for chunk in items if chunk is not None]
            for chunk in chunks:
                if not chunk[0].batched:
                    self._single_ended(chunk[0])
            for chunk in chunks:
                if chunk[0].batched:
                    self._batch_ended(chunk)
                # Let go of the future of an answered task at once: while a future is held, its
                # result stays on the worker, and a worker lost then would make Dask compute it
                # (run the runscripts) again. (It and its done callback hold each other.)
                for task in chunk:
                    if task.outcome is not None or task.error is not None:
                        task.future = None
            if None in items:
                return

    def _single_ended(self, task: Task) -> None:
        """A runscript's own Dask task ended: end the job, if the worker's event did not.

        A runscript that ran to its end says so (an event, with its exit code) before its
        task ends, on the same streams: a finished task not ended so is one whose worker
        went before its word reached us. Its result is not asked for: Dask would run the
        runscript again to make it (or wait for a worker for ever). An erred or cancelled
        one leaves its waiter to ask the future what went wrong. With retries, no attempt
        follows the task's end: the record that kept a later one from running the runscript
        again goes.
        """
        answer = None
        if task.future.status == "finished":
            answer = _lost("the Dask worker running it was lost after its runscript ended, before its exit code "
                           "was read; not run again")
        settle(task, answer, self.ended)
        if self.retries:
            forget_ended(task.args[0])

    def _batch_ended(self, chunk: list[Task]) -> None:
        """A batch's Dask task ended: end its runscripts that no worker event ended.

        Its worker's events come before its end: a runscript left is one whose worker was
        lost (or closed) meanwhile. The batch's own answers are not asked for: they are on
        that worker, and asking for a result Dask lost makes it compute it (run the
        runscripts) again. Neither is it run again: its start may have been among the
        worker's last words, lost with it; so it crashes, never silently.
        """
        future = chunk[0].future
        for task in chunk:
            if task.done.is_set():
                continue
            answer = None
            if future.status == "finished" or (future.status == "error" and task.started is None):
                reason = "running it closed mid-job" if task.started is not None else \
                    "holding it in a batch was lost (or closed) before it was known to have started it"
                answer = _lost(f"the Dask worker {reason}; not run again")
            settle(task, answer, self.ended)
