"""The state point view of a job: nested, attribute access, and a move on every change.

Changing a state point changes the job id, so :class:`StatePoint` hands each change to the
job, which rewrites ``signac_statepoint.json`` and renames the job folder to the new id.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._synced import SyncedDict

if TYPE_CHECKING:
    from .job import Job

__all__ = ["StatePoint", "STATEPOINT_FILENAME", "MOVE_FILENAME"]

#: The state point's file name inside a job folder, as signac names it.
STATEPOINT_FILENAME = "signac_statepoint.json"
#: Prefix of the pending file holding the new state point of a job being moved, written
#: before its folder is renamed; each move adds ``.<pid>.<n>``, so that concurrent moves of
#: one job never share a file (see ``Workspace._move_job_folder``).
MOVE_FILENAME = ".signac_statepoint.json.moving"


class _StatepointRoot:
    __slots__ = ("job",)

    def __init__(self, job: Job) -> None:
        self.job = job

    def load(self) -> dict[str, Any]:
        return self.job._statepoint_data()

    def modify(self, func: Callable[[dict[str, Any]], Any]) -> Any:
        data = copy.deepcopy(self.job._statepoint_data())
        result = func(data)
        self.job._move_to(data)
        return result


class StatePoint(SyncedDict):
    """A job's state point as a dict with attribute access (``job.sp.b.c``).

    Every change moves the job to the id of the changed state point; if a job with that
    id exists already, :class:`~plams_cli.errors.DestinationExistsError` is raised and
    nothing changes. ``job.sp()`` returns a plain ``dict`` copy.

    Parameters
    ----------
    job
        The job whose state point this is.
    """

    __slots__ = ()

    def __init__(self, job: Job) -> None:
        super().__init__(_StatepointRoot(job), ())
