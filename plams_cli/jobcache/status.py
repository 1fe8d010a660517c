"""``JobStatus``: the states of a recorded job, with job_manager's names, and the one
table that maps the core's statuses onto them."""

from __future__ import annotations

from enum import Enum

from plams_cli.errors import UserError

__all__ = ["JobStatus", "core_status", "parse_status", "ACTIVE_STATUSES"]


class JobStatus(str, Enum):
    """State of a recorded job; compares equal to its name (``JobStatus.running == "running"``).

    job_manager's six states plus ``failed``: the job ended with a non-zero exit code,
    crashed, or failed its checks in plams.
    """

    unknown = "unknown"
    held = "held"
    queueing = "queueing"
    running = "running"
    finished = "finished"
    analysed = "analysed"
    failed = "failed"

    def __str__(self) -> str:
        return self.value


#: statuses ``update()`` checks: the job may have moved on by itself since it was recorded
ACTIVE_STATUSES = frozenset({JobStatus.unknown, JobStatus.held, JobStatus.queueing, JobStatus.running})

#: the core's status -> the cache's. A job that is registered but not started waits for
#: its turn (dependencies, ``maxjobs``), which is queueing. ``finished`` in the core means
#: the program ended but the checks still run. ``deleted`` (the folder is gone) says
#: nothing about how the job ended, so it becomes ``unknown``; the row is kept.
CORE_STATUS_TABLE: dict[str, JobStatus] = {
    "created": JobStatus.queueing,
    "started": JobStatus.queueing,
    "registered": JobStatus.queueing,
    "running": JobStatus.running,
    "finished": JobStatus.running,
    "crashed": JobStatus.failed,
    "failed": JobStatus.failed,
    "successful": JobStatus.finished,
    "copied": JobStatus.finished,
    "preview": JobStatus.finished,
    "deleted": JobStatus.unknown,
}

#: the core's statuses after which a job does not change by itself
CORE_FINAL = frozenset({"crashed", "failed", "successful", "copied", "preview", "deleted"})


def core_status(status: str) -> JobStatus:
    """The cache's status for the core's ``status`` (a ``plams_cli.core.JobStatus`` or its name).

    Raises
    ------
    UserError
        ``status`` is not a status of the core.
    """
    try:
        return CORE_STATUS_TABLE[str(status).lower()]
    except KeyError:
        raise UserError(
            f"unknown job status {status!r}; the core's statuses are {', '.join(CORE_STATUS_TABLE)}"
        ) from None


def parse_status(value: str | JobStatus) -> JobStatus:
    """``value`` as a :class:`JobStatus`.

    Raises
    ------
    UserError
        ``value`` is not the name of a :class:`JobStatus`.
    """
    if isinstance(value, JobStatus):
        return value
    try:
        return JobStatus(value)
    except ValueError:
        names = ", ".join(s.value for s in JobStatus)
        raise UserError(f"unknown status {value!r}; use one of {names}") from None
