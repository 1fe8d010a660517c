"""The job cache: every job of every run, by host, in one concurrent-safe SQLite file.

Modelled on jsspencer's job_manager (``JobStatus``, ``Job``, ``JobServer``,
``JobCache``, ``jm list``), with its names and methods, robust where it was not: writers
never lose a job, statuses come from a PID *and* its start time or from exact-id batched
queue queries, and a failing queue query changes nothing. ``plams jobs`` is the command
line. This package imports nothing from ``plams_cli.cli`` nor ``plams_cli.core``.
"""

from __future__ import annotations

from plams_cli.errors import (
    CacheVersionError as CacheVersionError,
)
from plams_cli.errors import (
    CorruptedCacheError as CorruptedCacheError,
)
from plams_cli.errors import (
    JobCacheError as JobCacheError,
)
from plams_cli.errors import (
    LockException as LockException,
)
from plams_cli.errors import (
    UserError as UserError,
)
from plams_cli.jobcache.cache import JobCache as JobCache
from plams_cli.jobcache.job import Job as Job
from plams_cli.jobcache.paths import is_local_host as is_local_host
from plams_cli.jobcache.paths import resolve_cache_path as resolve_cache_path
from plams_cli.jobcache.server import JobServer as JobServer
from plams_cli.jobcache.status import JobStatus as JobStatus
from plams_cli.jobcache.status import core_status as core_status
from plams_cli.jobcache.update import UpdateReport as UpdateReport

__all__ = [
    "JobStatus",
    "Job",
    "JobServer",
    "JobCache",
    "UpdateReport",
    "core_status",
    "resolve_cache_path",
    "is_local_host",
    "UserError",
    "LockException",
    "JobCacheError",
    "CorruptedCacheError",
    "CacheVersionError",
]
