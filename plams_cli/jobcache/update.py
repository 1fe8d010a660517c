"""Status checks: is a recorded job still held, queued or running, and how did it end?

Invariants
----------
- A local job is its process: the PID must run *and* have started when the job's
  process did (``pid_start``, within :data:`START_TOLERANCE_S`); a new process that got
  the recorded PID is not the job. Without a recorded start time, the process must be
  older than the record.
- Grid jobs are asked about with one id-filtered query per grid (the grid module's
  :meth:`~plams_cli.runners.grid.GridRunner.query`), never one command per job, and ids
  match exactly (``123`` is not ``1234``).
- A queue query that fails leaves every status of that grid as it was, and says so in
  :attr:`UpdateReport.failures`: a failed query is not a finished job.
- A job that has gone tells its end from ``<folder>/<name>.job.json`` (written by the
  core) when that holds a final status.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from plams_cli.errors import PlamsError
from plams_cli.jobcache.job import Job
from plams_cli.jobcache.paths import is_local_host
from plams_cli.jobcache.status import ACTIVE_STATUSES, CORE_FINAL, JobStatus, core_status

__all__ = ["UpdateReport", "update_jobs", "end_status", "process_is_job", "queue_status", "START_TOLERANCE_S"]

#: how far a process's start time may be from the recorded one (clock granularity of /proc)
START_TOLERANCE_S = 1.5
_HELD = frozenset({"H", "S", "ST", "RH", "U", "SUSPENDED", "HELD"})
_QUEUEING = frozenset({"PD", "Q", "W", "T", "CF", "RQ", "RF", "RD", "PENDING", "QUEUED"})


@dataclass
class UpdateReport:
    """What a status update did.

    Attributes
    ----------
    checked
        Jobs whose process or queued job was looked at.
    changed
        Jobs whose status changed.
    failures
        One line per grid whose queue query failed (those statuses were left as they were).
    skipped_hosts
        Hosts not checked because they are not this machine.
    """

    checked: int = 0
    changed: int = 0
    failures: list[str] = field(default_factory=list)
    skipped_hosts: list[str] = field(default_factory=list)

    def add(self, other: UpdateReport) -> None:
        """Add the figures of ``other`` to these."""
        self.checked += other.checked
        self.changed += other.changed
        self.failures += other.failures
        self.skipped_hosts += other.skipped_hosts


def end_status(path: str) -> JobStatus | None:
    """The end status written by the core in ``<path>/<name>.job.json``; ``None`` when
    there is no such file or the job had not ended when it was written."""
    summary = os.path.join(path, os.path.basename(os.path.normpath(path)) + ".job.json")
    try:
        with open(summary, encoding="utf-8") as handle:
            status = json.load(handle).get("status")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(status, str) or status not in CORE_FINAL:
        return None
    return core_status(status)


def process_is_job(pid: int, pid_start: float | None, recorded: float) -> bool:
    """Whether process ``pid`` runs and is the one that was recorded.

    ``pid_start`` is the recorded start time of the process; without it, the process
    must have started before the job was recorded (at ``recorded``).
    """
    import psutil

    try:
        process = psutil.Process(pid)
        created = process.create_time()
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
    except psutil.NoSuchProcess:  # ZombieProcess included
        return False
    except psutil.AccessDenied:  # it runs, but whose it is cannot be told: not a reuse we can see
        return pid_start is None
    if pid_start is not None:
        return abs(created - pid_start) <= START_TOLERANCE_S
    return created <= recorded + START_TOLERANCE_S


def queue_status(state: str, current: JobStatus) -> JobStatus:
    """The status of a job the queue still lists with the scheduler's code ``state``.

    ``?`` (a PLAMS-style parser that only tells which jobs are queued) keeps a held,
    queueing or running status and is ``running`` otherwise, as in job_manager.
    """
    code = state.strip().upper()
    if code in _HELD:
        return JobStatus.held
    if code in _QUEUEING:
        return JobStatus.queueing
    if code == "?" and current in (JobStatus.held, JobStatus.queueing, JobStatus.running):
        return current
    return JobStatus.running


def _is_grid(job: Job) -> bool:
    # a Dask job is asked about through the batch job of its worker: gone, the job is over
    return job.kind == "grid" or (job.kind in (None, "dask") and bool(job.grid))


def update_jobs(jobs: Sequence[Job], hostname: str = "localhost") -> UpdateReport:
    """Check the unknown, held, queueing and running ``jobs`` of ``hostname`` and set their statuses.

    Only this machine's jobs are checked (``hostname`` ``localhost`` or this host's
    name); others are reported in :attr:`UpdateReport.skipped_hosts`. Jobs without a
    job id, and local jobs whose id is not a PID, are left alone.
    """
    report = UpdateReport()
    if not is_local_host(hostname):
        report.skipped_hosts.append(hostname)
        return report
    grids: dict[str, list[Job]] = {}
    for job in jobs:
        if job.status not in ACTIVE_STATUSES or not job.job_id:
            continue
        if _is_grid(job):
            grids.setdefault(job.grid or "auto", []).append(job)
        elif job.kind in (None, "local") and job.job_id.isdigit():
            report.checked += 1
            if process_is_job(int(job.job_id), job.pid_start, job.timestamp()):
                new = JobStatus.running
            else:
                new = end_status(job.path) or JobStatus.unknown
            report.changed += job.set_status(new)
    for grid, items in grids.items():
        ids = sorted({job.job_id for job in items if job.job_id})
        try:
            from plams_cli.runners.grid import GridRunner

            states = GridRunner(grid=grid).query(ids)
        except PlamsError as exc:  # QueueQueryError, an unknown grid …
            report.failures.append(f"{grid}: {exc}; the status of {len(items)} job(s) was left as it was")
            continue
        for job in items:
            report.checked += 1
            state = states.get(job.job_id or "")
            if state is not None and not state.finished:
                new = queue_status(state.state, job.status)
            else:
                new = end_status(job.path) or JobStatus.finished
            report.changed += job.set_status(new)
    return report
