"""``JobStatus``: the life-cycle states of a job, with PLAMS's names."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

__all__ = ["JobStatus", "STATUS_VALUES", "in_report_order"]


class JobStatus(str, Enum):
    """State of a job; compares equal to its lower-case name (``JobStatus.CRASHED == "crashed"``)."""

    CREATED = "created"
    STARTED = "started"
    REGISTERED = "registered"
    RUNNING = "running"
    FINISHED = "finished"
    CRASHED = "crashed"
    FAILED = "failed"
    SUCCESSFUL = "successful"
    COPIED = "copied"
    PREVIEW = "preview"
    DELETED = "deleted"

    def __str__(self) -> str:
        return self.value

    @property
    def is_final(self) -> bool:
        """Whether the job has reached an end state and will not change by itself."""
        return self in _FINAL

    @property
    def is_ok(self) -> bool:
        """Whether the job ended well: successful, copied from a successful duplicate, or a preview."""
        return self in _OK


_FINAL = frozenset(
    {JobStatus.CRASHED, JobStatus.FAILED, JobStatus.SUCCESSFUL, JobStatus.COPIED, JobStatus.PREVIEW, JobStatus.DELETED}
)
_OK = frozenset({JobStatus.SUCCESSFUL, JobStatus.COPIED, JobStatus.PREVIEW})

#: each status's value, for code run once per job change (``status.value`` is an enum property)
STATUS_VALUES: Mapping[JobStatus, str] = {status: status.value for status in JobStatus}

#: how statuses are listed in summaries: the life cycle, ends that went well before the others
REPORT_ORDER = ("created", "started", "registered", "running", "finished", "successful", "copied",
                "failed", "crashed", "preview", "deleted")


def in_report_order(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """``(status, number)`` pairs of ``counts`` in :data:`REPORT_ORDER`, zero counts left out."""
    known = [(status, counts[status]) for status in REPORT_ORDER if counts.get(status)]
    return known + sorted((s, n) for s, n in counts.items() if s not in REPORT_ORDER and n)
