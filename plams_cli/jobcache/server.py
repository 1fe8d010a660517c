"""``JobServer``: the jobs of one host, with job_manager's methods."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

from plams_cli.errors import UserError
from plams_cli.jobcache.job import Job, check_spec, compile_pattern
from plams_cli.jobcache.paths import is_local_host
from plams_cli.jobcache.update import UpdateReport, update_jobs

__all__ = ["JobServer"]


def _start_time(pid: int) -> float | None:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


class JobServer:
    """The jobs of one computer, in the order they were first recorded.

    Parameters
    ----------
    hostname
        The computer's name. ``localhost`` and this machine's name are this machine:
        only their jobs are checked by :meth:`auto_update`.

    Attributes
    ----------
    jobs
        The :class:`Job` list; a job's index is its position in it.
    """

    def __init__(self, hostname: str = "localhost") -> None:
        self.hostname = hostname
        self.jobs: list[Job] = []
        #: (path, mtime) of saved jobs deleted since they were read
        self._deleted: list[tuple[str, float]] = []

    def __repr__(self) -> str:
        return f"JobServer({self.hostname!r}, {len(self.jobs)} jobs)"

    def find(self, path: str) -> Job | None:
        """The job whose folder is ``path``, if there is one."""
        for job in self.jobs:
            if job.path == path:
                return job
        return None

    def add(self, job_spec: Mapping[str, Any]) -> Job:
        """Add a job from ``job_spec`` (see :meth:`Job.job_spec`) and return it.

        A folder holds one job: when ``path`` is already listed, that job is modified
        instead. A local job whose ``job_id`` is a running PID gets that process's start
        time as ``pid_start``, so a later process that reuses the PID is not taken for it.

        Raises
        ------
        UserError
            An unknown key, a bad status, or no ``path``.
        """
        job = Job.from_spec(job_spec)
        existing = self.find(job.path)
        if existing is not None:
            existing.modify(job_spec)
            return existing
        if (is_local_host(self.hostname) and job.pid_start is None and job.kind in (None, "local")
                and not job.grid and job.job_id is not None and job.job_id.isdigit()):
            job.pid_start = _start_time(int(job.job_id))
            if job.pid_start is not None and job.kind is None:
                job.kind = "local"
        self.jobs.append(job)
        return job

    def select(self, pattern: str | re.Pattern[str] | None) -> list[Job]:
        """The jobs in which ``pattern`` (a regular expression) is found; all for ``None``.

        Raises
        ------
        UserError
            ``pattern`` is not a valid regular expression.
        """
        regex = compile_pattern(pattern)
        return [job for job in self.jobs if job.match(regex)]

    def chosen(self, indices: Iterable[int] | None, pattern: str | re.Pattern[str] | None) -> list[Job]:
        """The jobs at ``indices`` and those matching ``pattern`` (each once, in that order).

        Raises
        ------
        UserError
            An index out of range or a bad pattern.
        """
        chosen: list[Job] = []
        for index in indices or ():
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self.jobs):
                last = f"0 to {len(self.jobs) - 1}" if self.jobs else "none: it has no jobs"
                raise UserError(f"no job {index!r} on {self.hostname} (indices: {last})")
            if self.jobs[index] not in chosen:
                chosen.append(self.jobs[index])
        if pattern:
            chosen += [job for job in self.select(pattern) if job not in chosen]
        return chosen

    def delete(self, indices: Iterable[int] | None = None, pattern: str | re.Pattern[str] | None = None) -> list[Job]:
        """Delete the jobs at ``indices`` and those matching ``pattern``; return them.

        Raises
        ------
        UserError
            An index out of range or a bad pattern; nothing is deleted then.
        """
        chosen = self.chosen(indices, pattern)
        for job in chosen:
            self.jobs.remove(job)
            if job._saved is not None:
                self._deleted.append(job._saved)
        return chosen

    def modify(self, job_spec: Mapping[str, Any], indices: Iterable[int] | None = None,
               pattern: str | re.Pattern[str] | None = None) -> list[Job]:
        """Apply :meth:`Job.modify` to the jobs at ``indices`` and those matching ``pattern``.

        Raises
        ------
        UserError
            An unknown key, bad status, index out of range or bad pattern; nothing is
            changed then.
        """
        check_spec(job_spec)
        chosen = self.chosen(indices, pattern)
        if "path" in job_spec and job_spec["path"] not in (None, "") and len(chosen) > 1:
            raise UserError("cannot give several jobs the same path: a folder holds one job")
        for job in chosen:
            job.modify(job_spec)
        return chosen

    def merge(self, other: JobServer) -> None:
        """Merge the jobs of ``other``: a job that is also here is replaced when the other
        one is newer; a job that is not here is copied.

        A job is "also here" when it has the same folder, or else the same job id —
        except for local jobs, whose PIDs are reused for unrelated jobs over time, and
        Dask jobs, whose id is that of a worker's batch job, shared by many jobs.
        """
        for theirs in other.jobs:
            mine = self.find(theirs.path)
            if mine is None and theirs.job_id is not None and theirs.kind not in ("local", "dask"):
                mine = next((j for j in self.jobs if j.job_id == theirs.job_id and j.kind not in ("local", "dask")),
                            None)
            if mine is None:
                new = copy.copy(theirs)
                new._saved, new._edited, new._auto = None, False, False
                self.jobs.append(new)
            elif theirs.timestamp() > mine.timestamp():
                for name, value in theirs.job_spec().items():
                    setattr(mine, name, theirs.status if name == "status" else value)
                mine._timestamp = theirs.timestamp()
                mine._edited = True

    def auto_update(self) -> UpdateReport:
        """Check the jobs' processes and queued jobs; only on this machine (see :func:`update_jobs`)."""
        return update_jobs(self.jobs, self.hostname)
