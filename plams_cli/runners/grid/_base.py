"""``GridRunner``: submit runscripts to a queueing system and wait for them.

The generic loop lives here and nothing scheduler-specific: submit (write the wrapper,
run the submit command, record the job id), poll (one poller thread per runner asks the
queue about all its jobs in one command), read the exit code, cancel. What the settings
say is resolved in :mod:`._config`, the files a job leaves are :mod:`._records`, and what
differs between schedulers is a :class:`~._backend.Backend` (:mod:`.slurm`, :mod:`.pbs`,
:mod:`.sge`) whose parsers the settings name.

:meth:`GridRunner.call` returns the runscript's exit code as the job itself recorded it
(see :mod:`._records`); a job that left the queue without it, or whose runscript died of a
signal the scheduler sent, was stopped by the scheduler, and the accounting says why
(TIMEOUT, CANCELLED, OUT_OF_MEMORY …). Messages go to the logger of :mod:`._log`.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from plams_cli._fs import hostname
from plams_cli.errors import GridError, QueueQueryError, SubmitError
from plams_cli.runners.base import Stopped
from plams_cli.runners.grid import _records as records
from plams_cli.runners.grid._backend import Accounting, QueueState
from plams_cli.runners.grid._command import run_command
from plams_cli.runners.grid._log import logger
from plams_cli.runners.launch import Launch, LaunchCallback, current_callback, report_launch
from plams_cli.runners.local import JobRunner, signals_to_main_thread

__all__ = ["GridRunner", "RUNNING_STATE_CODES", "MIN_POLL_INTERVAL_S", "POLL_AGE_FRACTION",
           "FAILURE_REPORT_INTERVAL_S", "MAX_IDS_PER_QUERY"]

#: shortest pause between two queue queries, seconds
MIN_POLL_INTERVAL_S = 0.2
#: queue state codes (SLURM, PBS, Grid Engine) of a job whose runscript runs, for the job cache
RUNNING_STATE_CODES = frozenset({"R", "RUNNING", "CG", "COMPLETING", "E", "T", "RR", "RT"})
#: the pause grows with the age of the youngest job: this fraction of it, up to sleepstep
POLL_AGE_FRACTION = 0.05
#: while queue queries keep failing, a warning every this many seconds
FAILURE_REPORT_INTERVAL_S = 60.0
#: most job ids in one query command (longer lists are split)
MAX_IDS_PER_QUERY = 500


# --- tracking submitted jobs --------------------------------------------------------
@dataclass(eq=False)
class _Tracked:
    job_id: str
    name: str
    submitted: float = field(default_factory=time.monotonic)
    started: float = field(default_factory=time.time)  # wall clock of the submission
    done: threading.Event = field(default_factory=threading.Event)
    state: str = ""
    final: QueueState | None = None
    cancelled_by: str = ""
    #: where changes of the job's queue state go (the job's launch callback), if anywhere
    report: LaunchCallback | None = None


class GridRunner(JobRunner):
    """Run jobs through a queueing system; use it like a :class:`JobRunner`.

    ``job.run(jobrunner=gr, queue='short', nodes=2, J='name')`` submits the job with
    ``-p short -N 2 -J name`` on SLURM. See ``plams grid detect``, ``plams grid list`` and
    ``plams grid show NAME`` for the command line side.

    Parameters
    ----------
    grid
        ``'auto'`` (detect; ``$PLAMS_GRID`` overrides), the name of a grid in the YAML
        defaults (``'slurm'``, ``'pbs'``, ``'sge'`` or a user one), or a mapping with the
        settings branch itself, whose parsers may be Python callables.
    sleepstep
        Longest pause, in seconds, between two queue queries. The pause starts at
        0.2 s and grows with the age of the youngest job, so short jobs are seen
        finished quickly and long ones cost few queries.
    parallel
        ``True``: ``job.run()`` returns at once (the normal use).
    maxjobs
        Most jobs in the queue at once (0: no limit).

    Raises
    ------
    SchedulerNotFoundError
        ``'auto'`` found no queueing system, or the name is unknown.
    """

    def __init__(
        self,
        grid: str | Mapping[str, Any] = "auto",
        sleepstep: float = 5,
        parallel: bool = True,
        maxjobs: int = 0,
    ) -> None:
        super().__init__(parallel=parallel, maxjobs=maxjobs)
        # (the definitions and the back-ends when a runner is made: every script's namespace has the class)
        from plams_cli.runners.grid._config import GridConfig, grid_settings
        from plams_cli.runners.grid._detect import detect_grid

        if isinstance(grid, Mapping):
            name, branch = str(grid.get("name", "custom")), grid
        else:
            name = detect_grid() if grid == "auto" else grid
            branch = grid_settings(name)
        if sleepstep <= 0:
            raise ValueError("sleepstep must be positive")
        self.sleepstep = float(sleepstep)
        #: the grid's settings, checked and resolved
        self.config = GridConfig.from_settings(name, branch)
        self.grid = name
        self.settings: dict[str, Any] = self.config.settings
        self._active: dict[str, _Tracked] = {}
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._poller: threading.Thread | None = None
        #: consecutive failed queue queries (0 when the last one worked)
        self.query_failures = 0
        self._failing_since = 0.0
        self._failure_reports = 1

    def __repr__(self) -> str:
        return f"GridRunner(grid={self.grid!r}, sleepstep={self.sleepstep:g}, parallel={self.parallel})"

    # --- submitting ---------------------------------------------------------------
    def submit_command(
        self, script: str, workdir: str, log: str | None, runflags: Mapping[str, Any], jobname: str
    ) -> list[str]:
        """The argument list that submits ``script`` (a file name in ``workdir``)."""
        return self.config.submit_command(script, workdir, log, runflags, jobname)

    def call(
        self,
        runscript: str,
        workdir: str,
        out: str | None,
        err: str | None,
        runflags: Mapping[str, Any] | None = None,
    ) -> int:
        """Submit ``runscript``, wait for the job to leave the queue, return its exit code.

        Parameters
        ----------
        runscript
            File name, inside ``workdir``, of an executable script with a shebang line.
        workdir
            The job folder (it must be on a file system the compute nodes share).
        out, err
            File names in ``workdir`` for the runscript's stdout and stderr, written live
            by the job; ``out=None`` leaves stdout to the runscript
            (``runscript.stdout_redirect``). The scheduler's own messages go to
            ``<runscript>.grid.log``.
        runflags
            ``job.settings.run``: become submit flags (see the module docs).

        Returns
        -------
        int
            The runscript's exit code, as recorded by the job itself.

        Raises
        ------
        SubmitError
            The scheduler refused the job or printed no job id.
        GridError
            The job left the queue without an exit code (cancelled, out of time or
            memory, node failure …): the message says what the scheduler reported.
        """
        if self._cancelled:
            raise GridError("not submitted: the run was cancelled")
        workdir = os.path.abspath(workdir)
        tracked = self._submit(runscript, workdir, out, err, runflags or {})
        # From here on an interrupt (KeyboardInterrupt in a serial run) must not leave it queued.
        try:
            self._record(tracked, workdir, runscript)
            report_launch(Launch("grid", tracked.job_id, tracked.started, self.grid, running=False), tracked.report)
            while True:
                while not tracked.done.wait(1.0):
                    self._ensure_poller()
                if tracked.cancelled_by:
                    raise GridError(
                        f"{self.grid} job {tracked.job_id} was cancelled by plams ({tracked.cancelled_by})"
                    )
                code = self._exit_code(tracked, records.exit_file(workdir, runscript),
                                       os.path.join(workdir, records.grid_log(runscript)))
                if code is not None:
                    return code
                self._retrack(tracked)  # the scheduler says it is not over: the listing missed it
        except BaseException:
            self._say(self._cancel_tracked([tracked], "interrupted"))
            raise

    def _submit(
        self, runscript: str, workdir: str, out: str | None, err: str | None, runflags: Mapping[str, Any]
    ) -> _Tracked:
        """Submit the wrapper of ``runscript`` and track the job."""
        wrapper, _ = records.write_wrapper(workdir, runscript, out, err)
        records.clear_records(workdir, runscript)  # left over from an earlier run of the same folder
        log = records.grid_log(runscript)
        jobname = records.safe_name(os.path.splitext(runscript)[0])
        argv = self.submit_command(wrapper, workdir, log, runflags, jobname)
        # The submission's cwd is the job folder: schedulers without a working-folder
        # flag (PBS) start there and put their default output files there.
        result = run_command(argv, self.config.submit_timeout_s, cwd=workdir)
        if not result.ok:
            raise SubmitError(f"{self.grid}: submission refused: {result.describe()}")
        job_id = self.config.parse_id(result.stdout, result.stderr)
        if not job_id:
            raise SubmitError(
                f"{self.grid}: the submit command printed no job id, so plams cannot follow the job: "
                f"{result.describe()}; if the scheduler queued it anyway, find it in the queue "
                f"(job name {jobname}) and cancel it"
            )
        return self._track(job_id, jobname, current_callback())

    def _record(self, tracked: _Tracked, workdir: str, runscript: str) -> None:
        """Write the job record (so that a restart after a kill finds the job); cancel a job submitted too late."""
        try:
            records.write_job_record(workdir, runscript, {
                "job_id": tracked.job_id, "grid": self.grid, "host": hostname(), "name": tracked.name,
                "cancel": shlex.join(self.cancel_command([tracked.job_id]) or []) or None,
            })
        except OSError as exc:
            logger.warning("could not record the id of %s job %s in %s: %s", self.grid, tracked.job_id, workdir, exc)
        if self._cancelled:  # cancel() ran while this job was being submitted
            self._say(self._cancel_tracked([tracked], "submitted while the run was being cancelled"))

    @staticmethod
    def _say(stopped: list[Stopped]) -> None:
        """Tell what a cancel inside :meth:`call` did (the run's cancel prints its own records)."""
        for record in stopped:
            logger.warning("%s", record)

    def _exit_code(self, tracked: _Tracked, exitfile: str, logfile: str) -> int | None:
        """The job's exit code, or ``None`` when the scheduler says it is not over after all."""
        record = records.read_exit_file(exitfile)
        if record is not None:
            return self._checked_code(tracked, int(record["exit_code"]), exitfile)
        # No record yet: either a shared file system is slow to show it, or the
        # scheduler killed the job before the wrapper could write it. The accounting
        # tells the two apart; only a job that ran to its end is worth waiting for.
        accounting = self._ask_accounting(tracked.job_id)
        if accounting is not None and accounting.active:
            logger.warning("%s job %s left the queue listing but the scheduler says %s; waiting for it again",
                           self.grid, tracked.job_id, accounting.describe())
            return None
        deadline = time.monotonic() + (0 if accounting and accounting.killed else self.config.grace_s)
        while time.monotonic() < deadline:
            time.sleep(0.2)
            with contextlib.suppress(OSError):
                os.listdir(os.path.dirname(exitfile))  # refreshes NFS's directory cache
            record = records.read_exit_file(exitfile)
            if record is not None:
                return self._checked_code(tracked, int(record["exit_code"]), exitfile)
        if accounting is None and tracked.final is not None:
            accounting = Accounting(tracked.final.state, source="queue listing")
        told = accounting.describe() if accounting else "no accounting available"
        message = (
            f"{self.grid} job {tracked.job_id} left the queue without recording an exit code; "
            f"the scheduler says: {told}"
        )
        tail = records.tail(logfile)
        if tail:
            message += f"; {os.path.basename(logfile)}: {tail}"
        raise GridError(message)

    def _checked_code(self, tracked: _Tracked, code: int, exitfile: str) -> int:
        """``code``, unless the runscript died of a signal the scheduler sent.

        A cancelled or timed-out job gets SIGTERM in all its processes; when the
        runscript dies first, the wrapper may still record 143 before its own signal
        arrives. The accounting then says what happened, which is the better message.
        """
        if code == records.WORKDIR_MISSING_EXIT and not os.path.exists(records.start_file(exitfile)):
            folder = os.path.dirname(exitfile)
            raise GridError(
                f"{self.grid} job {tracked.job_id} could not enter its folder {folder} on the compute "
                "node; the job folder must be on a file system the compute nodes share"
            )
        if code <= 128:
            return code
        accounting = self._ask_accounting(tracked.job_id)
        if accounting is not None and accounting.killed:
            raise GridError(
                f"{self.grid} job {tracked.job_id} was stopped by the scheduler: "
                f"{accounting.describe()}; the runscript ended with exit code {code}"
            )
        return code

    def _ask_accounting(self, job_id: str) -> Accounting | None:
        if self.config.accounting is None:
            return None
        try:
            answer = self.config.accounting(job_id, self.config.query_timeout_s)
        except QueueQueryError as exc:
            logger.info("accounting of job %s failed: %s", job_id, exc)
            return None
        return answer if isinstance(answer, Accounting) else None

    # --- polling --------------------------------------------------------------------
    def _track(self, job_id: str, name: str, report: LaunchCallback | None = None) -> _Tracked:
        tracked = _Tracked(job_id, name, report=report)
        with self._lock:
            self._active[job_id] = tracked
        self._ensure_poller()
        self._wakeup.set()
        return tracked

    def _retrack(self, tracked: _Tracked) -> None:
        """Wait for ``tracked`` again (a queue listing missed a job that is not over)."""
        tracked.done.clear()
        tracked.final = None
        with self._lock:
            self._active[tracked.job_id] = tracked
        self._ensure_poller()

    def _ensure_poller(self) -> None:
        # Start and stop are decided under the same lock as adding a job, so a job is
        # never added just after the poller decided to end (it would wait forever).
        with self._lock:
            if not self._active or (self._poller is not None and self._poller.is_alive()):
                return
            self._poller = threading.Thread(
                target=self._poll_loop, name=f"plams-grid-poller-{self.grid}", daemon=True
            )
            with signals_to_main_thread():
                self._poller.start()

    def query(self, ids: Sequence[str]) -> dict[str, QueueState]:
        """Ask the scheduler about ``ids`` in one command (per 500 ids).

        Returns
        -------
        dict
            Job id -> :class:`QueueState`, for the jobs the scheduler still lists; an id
            missing from it has left the queue.

        Raises
        ------
        QueueQueryError
            The command failed or timed out, or its output made no sense: the states
            are unknown, which is not the same as finished.
        """
        from plams_cli.runners.grid._config import expand_ids, takes_one_argument

        states: dict[str, QueueState] = {}
        check, running = self.config.check_argv, self.config.running
        has_ids = any("{ids" in a or "{id}" in a for a in check)
        chunks = [ids[i : i + MAX_IDS_PER_QUERY] for i in range(0, len(ids), MAX_IDS_PER_QUERY)]
        for chunk in chunks if has_ids else [ids]:
            result = run_command(expand_ids(check, chunk), self.config.query_timeout_s)
            if takes_one_argument(running):  # a PLAMS parser: ids of jobs still queued
                if not result.ok:
                    raise QueueQueryError(f"queue query failed: {result.describe()}")
                listed = running(result.stdout) or []
                states.update({str(i): QueueState("?", False) for i in listed})
            else:
                states.update(running(result, list(chunk)))
        return states

    def _poll_interval(self) -> float:
        with self._lock:
            youngest = max((t.submitted for t in self._active.values()), default=time.monotonic())
        age = time.monotonic() - youngest
        interval = max(MIN_POLL_INTERVAL_S, POLL_AGE_FRACTION * age)
        if self.query_failures:
            interval = max(interval, min(2.0**self.query_failures * 0.5, self.sleepstep))
        return min(interval, self.sleepstep)

    def _poll_loop(self) -> None:
        while True:
            with self._lock:
                if not self._active:
                    self._poller = None
                    return
                tracked = list(self._active.values())
            try:
                self._poll_once(tracked)
            except Exception:  # a bug in a parser must not strand the waiting jobs
                self.query_failures += 1
                logger.exception("grid poller: unexpected error; asking again later")
            self._wakeup.wait(self._poll_interval())
            self._wakeup.clear()

    def _poll_once(self, tracked: list[_Tracked]) -> None:
        try:
            states = self.query([t.job_id for t in tracked])
        except QueueQueryError as exc:
            self.query_failures += 1
            if self.query_failures == 1:
                logger.warning("%s; job states unknown, asking again later", exc)
                self._failing_since = time.monotonic()
            elif time.monotonic() - self._failing_since >= FAILURE_REPORT_INTERVAL_S * self._failure_reports:
                self._failure_reports += 1
                logger.warning("queue query still failing after %d tries (%.0f s): %s; %d job(s) waiting",
                               self.query_failures, time.monotonic() - self._failing_since, exc, len(tracked))
            return
        if self.query_failures:
            logger.warning("queue query works again after %d failures", self.query_failures)
        self.query_failures = 0
        self._failure_reports = 1
        for item in tracked:
            state = states.get(item.job_id)
            if state is not None and not state.finished:
                if item.report is not None and state.state != item.state:
                    running = state.state.upper() in RUNNING_STATE_CODES
                    report_launch(Launch("grid", item.job_id, item.started, self.grid, running), item.report)
                item.state = state.state
                continue
            item.final = state
            with self._lock:
                self._active.pop(item.job_id, None)
            item.done.set()

    # --- cancelling -------------------------------------------------------------------
    def _cancel_tracked(self, items: list[_Tracked], why: str) -> list[Stopped]:
        with self._lock:
            items = [t for t in items if self._active.pop(t.job_id, None) is not None]
        if not items:
            return []
        argv = self.cancel_command([t.job_id for t in items])
        if argv is None:
            refused: str | None = f"grid {self.grid!r} has no commands.cancel"
        else:
            result = run_command(argv, self.config.query_timeout_s)
            refused = None if result.ok else result.describe()
        stopped = []
        for item in items:
            item.cancelled_by = why
            item.done.set()
            stopped.append(Stopped(
                "grid", item.job_id, item.name, detail=refused or (item.state or "queued"),
                ok=refused is None, grid=self.grid,
            ))
        return stopped

    def cancel_command(self, ids: Sequence[str]) -> list[str] | None:
        """The argument list that cancels the jobs ``ids`` (``scancel 12 13``); ``None`` when the grid has none."""
        return self.config.cancel_command(ids)

    def cancel(self) -> list[Stopped]:
        """Cancel every job this runner submitted that is still queued or running.

        Jobs not submitted yet are refused from now on.

        Returns
        -------
        list of Stopped
            One record per job (kind ``"grid"``, the job id, the job's name, its last queue
            state as ``detail``); ``ok`` is ``False`` when the scheduler refused the cancel
            (``detail`` then says why). ``str(record)`` is the line ``plams`` prints.
        """
        self._cancelled = True
        with self._lock:
            items = list(self._active.values())
        return self._cancel_tracked(items, "run cancelled")

    @property
    def active_jobs(self) -> dict[str, str]:
        """Job id -> last state seen, for the jobs this runner is waiting for."""
        with self._lock:
            return {t.job_id: t.state for t in self._active.values()}
