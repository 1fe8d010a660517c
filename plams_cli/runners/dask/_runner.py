"""``DaskRunner``: run jobs on Dask workers, which a few batch jobs (or local processes) hold.

The runner is a :class:`~plams_cli.runners.local.JobRunner` whose :meth:`DaskRunner.call`
hands the runscript to a Dask worker (:func:`~._worker.run_runscript`) instead of starting
it here, and waits for its exit code: the life cycle, rerun prevention, pickling and
restarts are the local runner's, unchanged. What it guarantees:

* The cluster (and Dask itself) is started on the first job, scaled to ``jobs`` workers
  (or adaptively), and closed by ``finish()``, by :meth:`DaskRunner.cancel` (Ctrl-C,
  SIGTERM) and at exit; a batch cluster's close cancels its batch jobs.
* :meth:`DaskRunner.cancel` stops the running runscripts on the workers (their process
  groups), refuses the tasks not started (their jobs end "not started") and closes the
  cluster: nothing is left in the queue.
* A worker lost mid-job (its batch job killed, its process died) crashes the job with
  :class:`~plams_cli.errors.WorkerLostError`, or runs it again elsewhere up to
  ``retries`` times; it never counts as done.
* A scheduler that does not answer within ``connect_timeout_s`` crashes the jobs with
  :class:`~plams_cli.errors.SchedulerConnectionError`; nothing waits for ever on it.
* Short runscripts, many queued, share Dask tasks (:mod:`._batching`); each job still
  ends when its own runscript does, with its own exit code and files.
* Each start is announced (:func:`~plams_cli.runners.launch.report_launch`): a local
  process for a ``LocalCluster``, else kind ``"dask"`` with the batch job id of the worker.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import os
import threading
import uuid
import weakref
from collections.abc import Mapping
from typing import Any

from plams_cli.errors import DaskError, JobError, NotStartedError, PlamsError, SchedulerConnectionError, WorkerLostError
from plams_cli.runners.base import Stopped
from plams_cli.runners.closing import register_closing
from plams_cli.runners.dask._batching import Batcher, settle
from plams_cli.runners.dask._batching import Task as _Task
from plams_cli.runners.dask._settings import DaskSettings
from plams_cli.runners.dask._worker import END_TOPIC, LAUNCH_TOPIC, stop_runscripts
from plams_cli.runners.launch import Launch, current_callback, report_launch
from plams_cli.runners.local import STOP_GRACE_S, JobRunner, signals_to_main_thread, waiting

__all__ = ["DaskRunner"]

#: the cancel command of each batch cluster's scheduler, for the job records
_CANCEL = {"slurm": ["scancel"], "pbs": ["qdel"], "sge": ["qdel"]}
#: longest wait for a cluster's close (its batch jobs cancelled)
CLOSE_TIMEOUT_S = 30.0
#: how often a waiting job looks at whether the scheduler is still there
_POLL_S = 1.0
#: most job threads that wait for their runscripts with their slots given up
MAX_WAITING = 1024

_live: weakref.WeakSet[DaskRunner] = weakref.WeakSet()


def _batch_jobs(cluster: Any, kind: str | None) -> dict[str, str]:
    if cluster is None or kind == "local":
        return {}
    return {str(name): str(job.job_id) for name, job in list(cluster.workers.items())
            if getattr(job, "job_id", None)}


class DaskRunner(JobRunner):
    """Run each job's runscript on a Dask worker, in its job folder (a file system the workers share).

    ``job.run(jobrunner=dr, cores=4)`` runs the job on a worker with 4 of its cores free
    (the Dask resource ``cores``). Settings not given come from the ``daskrunner`` branch
    of the YAML defaults (see :mod:`._settings`).

    Parameters
    ----------
    cluster
        ``"local"``, ``"slurm"``, ``"pbs"``, ``"sge"`` or ``"auto"`` (what ``plams grid
        detect`` finds).
    client
        A ``distributed.Client`` of a cluster you run yourself: used, never closed.
    scheduler_address
        The address of a running Dask scheduler (``tcp://host:8786``): connected to on
        the first job, never shut down.
    maxjobs
        Most runscripts running at once (0: as many as the workers take).
    retries
        How often a job whose worker was lost mid-job runs again (default 0).
    parallel
        ``True`` (the normal use): ``job.run()`` returns at once.
    **cluster_kwargs
        ``jobs``, ``adaptive``, ``connect_timeout_s``, and the cluster class's own
        keywords (``cores``, ``memory``, ``walltime``, ``queue``, ``account``,
        ``job_extra_directives``, ``interface`` …).

    Raises
    ------
    DaskNotInstalledError
        The extra ``plams-cli[dask]`` is not installed.
    ConfigError
        A setting is invalid.
    """

    def __init__(self, cluster: str | None = None, *, client: Any = None, scheduler_address: str | None = None,
                 maxjobs: int = 0, retries: int | None = None, parallel: bool = True, **cluster_kwargs: Any) -> None:
        from plams_cli.runners.dask._cluster import require_dask

        super().__init__(parallel=parallel, maxjobs=maxjobs)
        self.dask = DaskSettings.resolve(
            {"cluster": cluster, "retries": retries, "scheduler_address": scheduler_address, **cluster_kwargs})
        require_dask(self.dask.cluster if client is None and self.dask.scheduler_address is None else "local")
        self._given_client = client
        self._client: Any = None
        self._cluster: Any = None
        self._batcher: Batcher | None = None
        #: the cluster kind in use (``auto`` resolved) once started
        self.kind: str | None = None
        self._start_lock = threading.Lock()
        self._lock = threading.Lock()
        self._tasks: dict[str, _Task] = {}
        self._unslotted = 0  # job threads waiting in call() with their slots given up
        #: runscripts and Dask tasks handed to Dask so far (several short runscripts go in one task)
        self.submitted = {"runscripts": 0, "tasks": 0}
        _live.add(self)
        register_closing(self)

    def __repr__(self) -> str:
        where = self.dask.scheduler_address or ("client" if self._given_client is not None else self.dask.cluster)
        return f"DaskRunner({where!r}, maxjobs={self.maxjobs}, retries={self.dask.retries})"

    @property
    def own_cluster(self) -> bool:
        """Whether this runner makes (and closes) its cluster."""
        return self._given_client is None and self.dask.scheduler_address is None

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` in use, started on first use."""
        return self._start()

    @property
    def cluster(self) -> Any:
        """The cluster this runner made (``None`` before the first job, or when it uses yours)."""
        return self._cluster

    # --- starting and closing -------------------------------------------------------
    def _start(self) -> Any:
        with self._start_lock:
            if self._client is not None:
                return self._client
            if self._cancelled:
                raise NotStartedError()
            # the client's event loop thread (and the cluster's) must leave Ctrl-C to the main thread
            with signals_to_main_thread():
                client = self._connect()
            try:
                from plams_cli.runners.dask._cluster import worker_plugin

                client.register_plugin(worker_plugin())
                client.subscribe_topic(LAUNCH_TOPIC, self._on_launch)
                client.subscribe_topic(END_TOPIC, self._on_end)
            except Exception as exc:
                self._close_quietly(client)
                raise SchedulerConnectionError(f"the Dask scheduler did not take plams's worker plugin: {exc}") from exc
            self._client = client
            self._batcher = Batcher(client, self.dask.retries, self._refusal, self.submitted, self._window())
            return client

    def _window(self) -> int | None:
        """Runscripts to hand Dask before one has ended: twice what the workers of our fixed cluster run."""
        if not self.own_cluster or self.dask.adaptive is not None or self.dask.jobs == 0:
            return None
        processes = int(self.dask.cluster_kwargs.get("processes", 1)) if self.kind != "local" else 1
        return 2 * self.dask.jobs * max(1, processes) * self.dask.worker_cores

    def _connect(self) -> Any:
        from plams_cli.runners.dask._cluster import connect, make_cluster

        if self._given_client is not None:
            self.kind = "client"
            return self._given_client
        if self.dask.scheduler_address is not None:
            self.kind = "scheduler"
            return connect(self.dask.scheduler_address, self.dask.connect_timeout_s)
        kind = self.dask.cluster
        if kind == "auto":
            from plams_cli.runners.detect import detect_grid

            kind = detect_grid()
            if kind not in _CANCEL:
                raise DaskError(f"cluster='auto' found the grid {kind!r}, which Dask has no cluster for")
        cluster = make_cluster(self.dask, kind)
        try:
            if self.dask.adaptive is not None:
                cluster.adapt(**self.dask.adaptive)
            elif kind == "local":
                cluster.scale(self.dask.jobs)
            else:
                cluster.scale(jobs=self.dask.jobs)
            client = connect(cluster, self.dask.connect_timeout_s)
        except BaseException:
            cluster.close()
            raise
        self.kind, self._cluster = kind, cluster
        return client

    def worker_batch_jobs(self) -> dict[str, str]:
        """Worker name -> batch job id, for the workers of a batch cluster this runner made."""
        return _batch_jobs(self._cluster, self.kind)

    def close(self) -> list[Stopped]:
        """Close the cluster this runner made (its batch jobs are cancelled) and the client.

        Called by ``finish()``, by :meth:`cancel` and at exit; the next job starts a new
        cluster. A client or scheduler of yours is left running.

        Returns
        -------
        list of Stopped
            One record (kind ``"grid"``) per worker batch job that was still held.
        """
        with self._start_lock:
            client, cluster, batcher = self._client, self._cluster, self._batcher
            self._client = self._cluster = self._batcher = None
        if batcher is not None:
            batcher.close()
        if client is None and cluster is None:
            return []
        batch = _batch_jobs(cluster, self.kind)
        if client is not None and client is not self._given_client:
            self._close_quietly(client)
        if cluster is not None:
            try:
                cluster.close(timeout=CLOSE_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - say what may be left, never fail the run's end
                return [Stopped("grid", job_id, f"Dask worker {name}", detail=f"close failed: {exc}", ok=False,
                                grid=self.kind) for name, job_id in batch.items()]
        return [Stopped("grid", job_id, f"Dask worker {name}", detail="closed", grid=self.kind)
                for name, job_id in batch.items()]

    @staticmethod
    def _close_quietly(client: Any) -> None:
        try:
            client.close(timeout=10)
        except Exception:  # noqa: BLE001, S110 - a client whose scheduler is gone closes anyway
            pass

    # --- running ----------------------------------------------------------------------
    def _resources(self, runflags: Mapping[str, Any]) -> dict[str, Any] | None:
        """The Dask resources the job asks for: ``cores`` (1 on a cluster of ours) and ``resources``."""
        wanted = dict(runflags.get("resources") or {})
        cores = runflags.get("cores")
        if cores is not None:
            wanted["cores"] = cores
        if self.own_cluster:
            wanted.setdefault("cores", 1)
            have = self.dask.worker_cores
            if float(wanted["cores"]) > have:
                raise JobError(f"the job asks for {wanted['cores']} cores and each Dask worker has {have} "
                               "(daskrunner cores / processes): no worker can run it")
        return wanted or None

    def call(self, runscript: str, workdir: str, out: str | None, err: str | None,
             runflags: Mapping[str, Any] | None = None) -> int:
        """Run ``runscript`` on a Dask worker in ``workdir``; return its exit code.

        Parameters
        ----------
        runscript, workdir, out, err
            As for :meth:`JobRunner.call`; ``workdir`` must be on a file system the
            workers share.
        runflags
            ``job.settings.run``: ``cores`` and ``resources`` become Dask resources.

        Returns
        -------
        int
            The exit code; minus the signal number when the runscript was killed.

        Raises
        ------
        NotStartedError
            The run was cancelled before the runscript started.
        WorkerLostError
            The worker running it was lost mid-job (and no retry was left).
        SchedulerConnectionError
            The scheduler did not answer, or went away.
        JobError
            The runscript could not be started on the worker.
        """
        if self._cancelled:
            raise NotStartedError()
        flags = dict(runflags or {})
        resources = self._resources(flags)
        self._start()
        workdir = os.path.abspath(workdir)
        key = f"plams-{runscript}-{uuid.uuid4().hex}"
        cancel = _CANCEL.get(self.kind or "") if self.own_cluster else None
        args = (os.path.join(workdir, runscript), workdir, out, err, key, self.dask.retries + 1,
                self.kind if cancel else None, cancel)
        task = _Task(key, runscript, args, resources, current_callback())
        with self._lock:
            if self._cancelled:
                raise NotStartedError()
            batcher = self._batcher
            if batcher is None:  # closed meanwhile (finish() of another thread's run)
                raise NotStartedError("not started: the Dask cluster was closed")
            self._tasks[key] = task
        try:
            batcher.submit(task)
            return int(self._wait_unslotted(task)["exit_code"])
        finally:
            with self._lock:
                self._tasks.pop(key, None)

    def _wait_unslotted(self, task: _Task) -> dict[str, Any]:
        """:meth:`_wait`, the job thread's slot given up meanwhile (up to :data:`MAX_WAITING` threads).

        The slots (``maxthreads``) then bound the threads that work, preparing and
        finishing jobs, not those whose runscripts are on the workers: the script hands
        every job to the runner at once (the batches fill), and few threads contend for
        the interpreter lock. Each waiting thread is a thread of the system: past
        ``MAX_WAITING`` of them, a thread waits in its slot (the script waits for slots).
        """
        with self._lock:
            unslotted = self._unslotted < MAX_WAITING
            self._unslotted += unslotted
        try:
            with waiting() if unslotted else contextlib.nullcontext():
                return self._wait(task)
        finally:
            with self._lock:
                self._unslotted -= unslotted

    def _refusal(self) -> BaseException | None:
        """What a task not submitted yet ends with: the run was cancelled, or nothing."""
        return NotStartedError() if self._cancelled else None

    def _wait(self, task: _Task) -> dict[str, Any]:
        from distributed import KilledWorker

        while not task.done.wait(_POLL_S):
            status = getattr(self._client, "status", "closed")
            if status not in ("running", "connecting", "newly-created"):
                if self._cancelled:
                    raise self._interrupted(task)
                raise SchedulerConnectionError(f"lost the Dask scheduler (client {status})")
        if task.outcome is not None:
            return task.outcome
        try:
            if task.error is not None:
                raise task.error
            outcome: dict[str, Any] = task.future.result()
            return outcome
        except KilledWorker as exc:
            where = self._where(task) or self._where_lost(exc)
            raise WorkerLostError(f"the Dask worker running it{where} was lost mid-job: {exc}") from exc
        except concurrent.futures.CancelledError:
            raise self._interrupted(task) from None
        except PlamsError:
            raise
        except Exception as exc:
            raise JobError(f"cannot run {task.runscript} on a Dask worker: {type(exc).__name__}: {exc}") from exc

    def _interrupted(self, task: _Task) -> JobError:
        if task.started is None:
            return NotStartedError()
        return JobError(f"runscript stopped on its Dask worker{self._where(task)}: the run was cancelled")

    def _where_lost(self, exc: Any) -> str:
        """Where a task whose start the runner had not heard of yet ran: the scheduler's last worker for it."""
        last = getattr(exc, "last_worker", None)
        name = getattr(last, "name", None)
        if name is None:
            return ""
        batch = self.worker_batch_jobs().get(str(name))
        return f" ({name}, batch job {batch})" if batch else f" ({name})"

    @staticmethod
    def _where(task: _Task) -> str:
        info = task.started
        if not info:
            return ""
        batch = f", batch job {info['batch_id']}" if info.get("batch_id") else ""
        return f" ({info.get('worker')}{batch}, host {info.get('host')})"

    def _on_launch(self, event: Any) -> None:
        """A worker started a runscript (runs in the client's event loop: bookkeeping only)."""
        _, info = event
        task = self._tasks.get(str(info.get("key"))) if isinstance(info, dict) else None
        if task is not None:
            self._launched(task, info)

    def _launched(self, task: _Task, info: dict[str, Any]) -> None:
        task.started = info
        if self._batcher is not None:
            self._batcher.started(info)
        if info.get("batch_id"):
            launch = Launch("dask", str(info["batch_id"]), float(info["started"]), self.kind if self.own_cluster
                            and self.kind != "local" else None)
        else:
            launch = Launch("local", str(info["pid"]), float(info["started"]))
        report_launch(launch, task.report)

    def _on_end(self, event: Any) -> None:
        """A runscript ended on its worker (runs in the client's event loop)."""
        _, answer = event
        task = self._tasks.get(str(answer.get("key"))) if isinstance(answer, dict) else None
        if task is None or task.done.is_set():
            return
        if task.started is None and "pid" in answer:  # a quick one: its start comes with its end
            self._launched(task, answer)
        batcher = self._batcher
        settle(task, answer, batcher.ended if batcher is not None else None)

    # --- cancelling -----------------------------------------------------------------
    def cancel(self) -> list[Stopped]:
        """Stop the running runscripts on the workers, refuse the jobs not started, close the cluster.

        Returns
        -------
        list of Stopped
            One record (kind ``"dask"``) per runscript stopped, one (kind ``"grid"``) per
            worker batch job cancelled; ``str(record)`` is the line ``plams`` prints.
        """
        with self._lock:
            self._cancelled = True
            tasks = list(self._tasks.values())
            client = self._client
        records: list[Stopped] = []
        if client is not None and tasks:
            records += self._stop_on_workers(client, tasks)
        if self.own_cluster:
            records += self.close()
        return records

    def _stop_on_workers(self, client: Any, tasks: list[_Task]) -> list[Stopped]:
        names = {task.key: task.runscript for task in tasks}
        try:
            answers = client.run(stop_runscripts, list(names), STOP_GRACE_S, on_error="return")
            # (read once: the collect thread lets go of answered tasks' futures meanwhile)
            client.cancel([future for future in (task.future for task in tasks) if future is not None])
        except Exception as exc:  # noqa: BLE001 - the cluster's close below still ends them
            return [Stopped("dask", "?", "runscripts on the Dask workers", detail=f"could not reach them: {exc}",
                            ok=False)]
        records = []
        for address, stopped in sorted(answers.items()):
            if not isinstance(stopped, list):
                records.append(Stopped("dask", "?", f"runscripts on {address}", detail=str(stopped), ok=False))
                continue
            for item in stopped:
                task = self._tasks.get(str(item["key"]))
                if task is not None and task.started is None:  # stopped before its start was announced
                    task.started = item
                batch = f", batch job {item['batch_id']}" if item.get("batch_id") else ""
                records.append(Stopped(
                    "dask", str(item["pid"]), names.get(item["key"], item["key"]),
                    signals=tuple(s for s in ("SIGTERM", "SIGKILL") if s in item["how"]),
                    detail=f"{item['how']} (Dask worker {item['worker']}{batch}, host {item['host']})"))
        return records


@atexit.register
def _close_all() -> None:
    for runner in list(_live):
        try:
            runner.close()
        except Exception:  # noqa: BLE001, S110 - at exit, nothing can be done about it
            pass
