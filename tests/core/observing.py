"""An observer of the job life cycle that keeps everything it is told (for the lifecycle tests)."""

from __future__ import annotations

import threading

from plams_cli.core.jobs import Job
from plams_cli.core.status import JobStatus
from plams_cli.runners.launch import Launch

__all__ = ["Recorder"]


class Recorder:
    """An observer keeping everything it is told, per job."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.changes: list[tuple[Job, JobStatus, JobStatus]] = []
        self.launches: list[tuple[Job, Launch]] = []

    def status_changed(self, job: Job, old: JobStatus, new: JobStatus, when: float) -> None:
        with self.lock:
            self.changes.append((job, old, new))

    def job_launched(self, job: Job, launch: Launch) -> None:
        with self.lock:
            self.launches.append((job, launch))

    def of(self, job: Job) -> list[str]:
        return [new.value for seen, _, new in self.changes if seen is job]

    def olds_match(self, job: Job) -> bool:
        """Each change starts where the previous one ended (nothing missed, nothing twice)."""
        previous = JobStatus.CREATED
        for seen, old, new in self.changes:
            if seen is job:
                if old is not previous:
                    return False
                previous = new
        return True
